import { join } from 'node:path';
import test from 'ava';
import { startCluster } from './harness.js';
import { sh, startMount } from './mount-harness.js';

/** Runs a command as another user (nobody), as a second person on the machine would. */
function asNobody(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh(`setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sh -c ${JSON.stringify(command)}`);
}

test('run as root, the mount lets other users in and the kernel checks permissions; files belong to who made them', async (t) => {
  t.is(process.getuid?.(), 0, 'this test runs as root, as the mount does');
  const cluster = await startCluster(t);
  const mount = await startMount(t, cluster);
  const shared = join(mount.dir, 'shared');
  const secret = join(mount.dir, 'secret.txt');
  t.is((await sh(`mkdir ${shared} && chmod 777 ${shared} && echo root-only > ${secret} && chmod 600 ${secret}`)).code, 0);

  // Another user can enter the mount (allow_other) but not read a file mode 600 of root's (default_permissions).
  const listed = await asNobody(`ls ${mount.dir}`);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /secret\.txt/);
  const denied = await asNobody(`cat ${secret}`);
  t.not(denied.code, 0);
  t.regex(denied.stderr, /Permission denied/);
  t.regex((await asNobody(`echo x >> ${secret}`)).stderr, /Permission denied/);

  // What that user makes belongs to that user, with the mode it asked for under its umask.
  const made = await asNobody(`umask 022 && echo mine > ${shared}/mine.txt && mkdir ${shared}/d && stat -c '%u %g %a' ${shared}/mine.txt ${shared}/d`);
  t.is(made.code, 0, made.stderr);
  t.deepEqual(made.stdout.trim().split('\n'), ['65534 65534 644', '65534 65534 755']);
  // And root sees the same owner.
  t.is((await sh(`stat -c '%u' ${shared}/mine.txt`)).stdout.trim(), '65534');
  // The user cannot chmod a file it does not own.
  t.regex((await asNobody(`chmod 777 ${secret}`)).stderr, /Operation not permitted/);
});
