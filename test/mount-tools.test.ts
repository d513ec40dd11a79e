import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startCluster, type TestCluster } from './harness.js';
import { sh, startMount, type TestMount } from './mount-harness.js';
import { localDir, makeTree, q, run } from './mount-util.js';

/**
 * Everyday shell tools against a real mount. Where it can, each test runs the same commands in a local
 * temp folder (the kernel's own file system is the reference) and in the mount, and compares; known
 * values are checked on top, so a test fails whenever the mount disagrees with Linux.
 */

// Times print the same in every run.
const env = { TZ: 'UTC', LC_ALL: 'C' };

async function setup(t: ExecutionContext, mounts = 1): Promise<{ cluster: TestCluster; mnt: TestMount[] }> {
  const cluster = await startCluster(t);
  const mnt: TestMount[] = [];
  for (let i = 0; i < mounts; i++) mnt.push(await startMount(t, cluster));
  return { cluster, mnt };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of createReadStream(path)) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** Runs one script in a local folder and in a mount folder; both outputs. */
async function both(local: string, mounted: string, script: string, timeoutMs = 60_000): Promise<{ local: string; mounted: string }> {
  return {
    local: await run(script, { cwd: local, env, timeoutMs }),
    mounted: await run(script, { cwd: mounted, env, timeoutMs }),
  };
}

test.serial('mkdir -p, echo > and >>, cat, chmod, stat, ls -l, mv of files and directories, rm -r: as on a local disk', async (t) => {
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const script = String.raw`
    set -e
    mkdir -p a/b/c a/x/y
    mkdir -p a/b/c            # -p on an existing path is fine
    echo hello > a/b/f
    echo world >> a/b/f
    echo again >> a/b/f
    cat a/b/f
    printf abcdefgh > a/x/g
    echo short > a/x/g        # > truncates
    cat a/x/g
    chmod 600 a/b/f
    chmod 751 a/b
    chmod u+x,g-r a/x/g
    stat -c '%n|%F|%a|%h|%U|%G' a a/b a/b/c a/x a/x/y a/b/f a/x/g
    stat -c '%n|%s' a/b/f a/x/g
    echo '-- ls -l'
    ls -l a a/b a/x | awk '/^total/ {next} NF > 2 {print $1, $2, $3, $4, ($1 ~ /^d/ ? "-" : $5), $NF; next} {print}'
    echo '-- mv'
    mv a/b/f a/x/f2           # a file into another directory
    mv a/b a/x/b2             # a directory (with a subdirectory) into another one
    mv a/x/g a/g-renamed      # a rename in place
    mv a/x/y a/y2             # a directory up one level
    echo over > a/over; mv a/over a/g-renamed   # over an existing file
    find a | sort
    cat a/x/f2 a/g-renamed
    stat -c '%n|%h|%a' a a/x a/x/b2 a/x/b2/c a/y2 a/x/f2
    echo '-- rm -r'
    rm -r a/x
    find a | sort
    rm -r a
    ls -A
    echo end
  `;
  const out = await both(local, mnt[0]!.dir, script);
  t.is(out.mounted, out.local);
  // The reference is itself what these commands must print.
  t.true(out.mounted.startsWith('hello\nworld\nagain\nshort\n'));
  const [user, group] = (await run('id -un && id -gn')).trim().split('\n');
  t.true(out.mounted.includes(`\na/b/f|regular file|600|1|${user}|${group}\n`));
  t.regex(out.mounted, /^a\/b\|directory\|751\|3\|/m);
  t.regex(out.mounted, /^a\/x\/b2\/c\|2\|755$/m);
  t.regex(out.mounted, /-- rm -r\na\na\/g-renamed\na\/y2\nend\n$/);
});

test.serial('rmdir of a non-empty directory fails with "Directory not empty"; once emptied it goes', async (t) => {
  const { mnt } = await setup(t);
  const dir = mnt[0]!.dir;
  await run('mkdir -p d/e && echo x > d/e/f', { cwd: dir });
  const first = await sh('rmdir d', { cwd: dir, env });
  t.not(first.code, 0);
  t.regex(first.stderr, /Directory not empty/);
  const second = await sh('rmdir d/e', { cwd: dir, env });
  t.regex(second.stderr, /Directory not empty/);
  await run('rm d/e/f && rmdir d/e && rmdir d && ! test -e d', { cwd: dir });
  t.is(await run('ls -A', { cwd: dir }), '');
});

test.serial('cp -r of a tree of 1,000 files: diff -r finds no difference, here and through a second mount', async (t) => {
  // About 30 ms a file on a quiet machine (each close is a durable commit); far more on a loaded one.
  t.timeout(240_000);
  const { cluster, mnt } = await setup(t);
  const local = await localDir(t);
  await makeTree(join(local, 'src'), 1_000, 20);
  const started = Date.now();
  await run(`cp -r ${q(join(local, 'src'))} ${q(join(mnt[0]!.dir, 'tree'))}`, { timeoutMs: 200_000 });
  t.log(`cp -r of 1,000 files: ${Date.now() - started} ms`);
  await run(`diff -r ${q(join(local, 'src'))} ${q(join(mnt[0]!.dir, 'tree'))}`);
  t.is((await run(`find ${q(join(mnt[0]!.dir, 'tree'))} -type f | wc -l`)).trim(), '1000');
  // A mount that saw none of it reads the committed files from the cluster.
  const other = await startMount(t, cluster);
  await run(`diff -r ${q(join(local, 'src'))} ${q(join(other.dir, 'tree'))}`);
  const listing = 'find . -printf "%p %y\\n" | sort';
  t.is(await run(listing, { cwd: join(other.dir, 'tree') }), await run(listing, { cwd: join(local, 'src') }));
});

test.serial('cp -a keeps modes, owners, symlinks and times to the nanosecond', async (t) => {
  const { mnt } = await setup(t);
  const local = await localDir(t);
  await run(
    String.raw`
    set -e
    mkdir -p src/d1/d2 src/d3
    printf 'a\n' > src/d1/a; printf 'x\n' > src/d1/x; printf 'ro\n' > src/d1/ro; printf 'deep\n' > src/d1/d2/deep
    head -c 300000 /dev/urandom > src/d3/blob; : > src/empty
    chmod 600 src/d1/a; chmod 755 src/d1/x; chmod 444 src/d1/ro; chmod 640 src/d1/d2/deep; chmod 4755 src/d3/blob
    if [ "$(id -u)" = 0 ]; then chown 1234:5678 src/d1/a; fi
    ln -s d1/a src/link; ln -s missing src/dangling
    touch -h -d '2003-04-05 06:07:08.123456789' src/link src/dangling
    touch -d '2001-01-01 00:00:00.5' src/d1/a
    touch -d '1999-12-31 23:59:59.999999999' src/d1/x src/d1/ro
    touch -d '2020-02-29 12:00:00.000000001' src/d1/d2/deep src/d3/blob src/empty
    chmod 700 src/d1/d2; chmod 750 src/d3
    touch -d '2005-05-05 05:05:05.050505050' src/d1/d2 src/d1 src/d3 src
  `,
    { cwd: local, env },
  );
  await run(`cp -a ${q(join(local, 'src'))} ${q(join(mnt[0]!.dir, 'copy'))}`, { env });
  const listing = String.raw`find . -printf '%p|%y|%m|%U|%G|%T@|%l\n' | sort; find . ! -type d -printf '%p %s\n' | sort; find . | sort | xargs stat -c '%n|%A|%u|%g|%y'`;
  const want = await run(listing, { cwd: join(local, 'src'), env });
  const got = await run(listing, { cwd: join(mnt[0]!.dir, 'copy'), env });
  t.is(got, want);
  const owner = process.getuid?.() === 0 ? '1234\\|5678' : `${process.getuid?.()}\\|${process.getgid?.()}`;
  t.regex(got, new RegExp(`^\\./d1/a\\|f\\|600\\|${owner}\\|978307200\\.5000000000\\|`, 'm'));
  t.regex(got, /^\.\/d3\/blob\|f\|4755\|/m);
  t.regex(got, /^\.\/link\|l\|777\|\d+\|\d+\|1049522828\.1234567890\|d1\/a$/m);
  t.regex(got, /^\.\/d1\/d2\|drwx------\|\d+\|\d+\|2005-05-05 05:05:05\.050505050 \+0000$/m);
  await run(`cmp ${q(join(local, 'src/d3/blob'))} ${q(join(mnt[0]!.dir, 'copy/d3/blob'))}`);
});

test.serial('truncate shrinks and grows (the grown part reads as zeros), within a chunk and across chunks', async (t) => {
  const { mnt } = await setup(t, 2);
  const local = await localDir(t);
  await run('head -c 10000 /dev/urandom > seed-small && head -c 9437184 /dev/urandom > seed-big', { cwd: local });
  const script = (seeds: string) => String.raw`
    set -e
    cp ${seeds}/seed-small s; truncate -s 3000 s; stat -c %s s; truncate -s 12000 s; stat -c %s s
    cp ${seeds}/seed-big b; truncate -s 5M b; truncate -s 11M b; stat -c %s b
    printf 'some bytes' > z; truncate -s 0 z; truncate -s 1M z; stat -c %s z
    # Holes made by writing past the end, within and across chunks.
    head -c 3000000 ${seeds}/seed-big > h1; dd if=${seeds}/seed-small of=h1 bs=1000 count=3 seek=10000 conv=notrunc status=none
    printf abc | dd of=h2 bs=1 seek=9000000 status=none
    truncate -s 20M h3; printf z >> h3
    sha256sum s b z h1 h2 h3
  `;
  const out = await both(local, mnt[0]!.dir, script(local));
  t.is(out.mounted, out.local);
  t.regex(out.mounted, /^3000\n12000\n11534336\n1048576\n/);
  const dir = mnt[0]!.dir;
  // Independently of the reference: the kept part is the seed's, the grown part zeros.
  await run(`cmp -n 3000 s ${q(join(local, 'seed-small'))} && test "$(tail -c +3001 s | tr -d '\\000' | wc -c)" = 0`, { cwd: dir });
  await run(`cmp -n 5242880 b ${q(join(local, 'seed-big'))} && test "$(tail -c +5242881 b | tr -d '\\000' | wc -c)" = 0`, { cwd: dir });
  await run(`test "$(tr -d '\\000' < z | wc -c)" = 0`, { cwd: dir });
  // What was committed, as another mount reads it.
  t.is(await run('sha256sum s b z h1 h2 h3', { cwd: mnt[1]!.dir }), out.local.split('\n').slice(4).join('\n'));
});

test.serial('touch -d sets an exact time; touch -m changes only mtime, touch -a only atime (UTIME_OMIT)', async (t) => {
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const script = String.raw`
    set -e
    touch f; mkdir d
    touch -d '2001-02-03 04:05:06.123456789' f d; stat -c '%n|%x|%y' f d
    touch -m -d '2010-11-12 13:14:15.5' f d; stat -c '%n|%x|%y' f d
    touch -a -d '2012-01-02 03:04:05.000000007' f d; stat -c '%n|%x|%y' f d
    touch -m f; stat -c '%n|%x' f; stat -c %Y f > mtime-now
    touch -a f; stat -c %X f > atime-now; test "$(stat -c %Y f)" = "$(cat mtime-now)"
    echo now: $(( $(date +%s) - $(cat mtime-now) < 30 )) $(( $(date +%s) - $(cat atime-now) < 30 ))
  `;
  const out = await both(local, mnt[0]!.dir, script);
  t.is(out.mounted, out.local);
  t.is(
    out.mounted,
    [
      'f|2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000',
      'd|2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000',
      'f|2001-02-03 04:05:06.123456789 +0000|2010-11-12 13:14:15.500000000 +0000',
      'd|2001-02-03 04:05:06.123456789 +0000|2010-11-12 13:14:15.500000000 +0000',
      'f|2012-01-02 03:04:05.000000007 +0000|2010-11-12 13:14:15.500000000 +0000',
      'd|2012-01-02 03:04:05.000000007 +0000|2010-11-12 13:14:15.500000000 +0000',
      'f|2012-01-02 03:04:05.000000007 +0000',
      'now: 1 1',
      '',
    ].join('\n'),
  );
});

test.serial('ln: a hard link shares the inode, both names count 2 links, and a write through one shows through the other at once', async (t) => {
  const { mnt } = await setup(t);
  const dir = mnt[0]!.dir;
  const out = await run(
    String.raw`
    set -e
    printf 'hello\n' > a; mkdir d
    ln a b; ln a d/c
    stat -c '%n %i %h %s' a b d/c
    printf 'more data\n' >> b
    stat -c '%n %i %h %s' a b d/c
    cat a
    rm a
    stat -c '%n %h %s' b d/c
  `,
    { cwd: dir, env },
  );
  const lines = out.trim().split('\n');
  const [a1, b1, c1] = lines.slice(0, 3).map((l) => l.split(' '));
  t.is(a1![1], b1![1], 'same inode number through both names');
  t.is(a1![1], c1![1]);
  t.deepEqual([a1![2], b1![2], c1![2]], ['3', '3', '3']);
  t.deepEqual(lines.slice(3, 6), [`a ${a1![1]} 3 16`, `b ${a1![1]} 3 16`, `d/c ${a1![1]} 3 16`]);
  t.deepEqual(lines.slice(6), ['hello', 'more data', 'b 2 16', 'd/c 2 16']);
  // Two names only: the count is 2 through both.
  t.is(await run('rm d/c && stat -c "%h" b', { cwd: dir }), '1\n');
  await run('ln b e', { cwd: dir });
  t.is(await run('stat -c "%h %i" b e | uniq | wc -l; stat -c %h b e', { cwd: dir }), '1\n2\n2\n');
  // Through a descriptor kept open (unflushed), the other name shows the new size at once too.
  t.is(
    await run('exec 3>>e; printf 12345 >&3; stat -c %s b; cat b; truncate -s 3 b; stat -c %s e; exec 3>&-; cat e; stat -c %s b', { cwd: dir }),
    '21\nhello\nmore data\n12345' + '3\nhel3\n',
  );
  // ls shows the same inode numbers (readdir_ino) as stat.
  const inodes = await run('ls -i b e | awk "{print \\$1}" | uniq | wc -l', { cwd: dir });
  t.is(inodes, '1\n');
});

test.serial('ln -s and readlink: relative, directory and dangling symlinks', async (t) => {
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const script = String.raw`
    set -e
    echo data > target; mkdir dir; echo inner > dir/x
    ln -s target s1; ln -s dir s2; ln -s ../target dir/s3; ln -s nowhere dangling; ln -s /etc/hostname abs
    readlink s1 s2 dir/s3 dangling abs
    cat s1 s2/x dir/s3
    stat -c '%n|%F|%s|%a' s1 s2 dangling abs
    ls s2/
    ls -l s1 | awk '{print $1, $(NF-2), $(NF-1), $NF}'
    if stat -L dangling 2>err; then echo followed; else echo "dangling: $(grep -o 'No such file or directory' err)"; fi
    ln -s other s1 2>err || echo "exists: $(grep -o 'File exists' err)"
    rm s2; test -d dir && echo kept
  `;
  const out = await both(local, mnt[0]!.dir, script);
  t.is(out.mounted, out.local);
  t.true(out.mounted.startsWith('target\ndir\n../target\nnowhere\n/etc/hostname\ndata\ninner\ndata\ns1|symbolic link|6|777\n'));
  t.regex(out.mounted, /^lrwxrwxrwx s1 -> target$/m);
  t.regex(out.mounted, /dangling: No such file or directory\nexists: File exists\nkept\n$/);
});

test.serial('tar round trip: tar c of a real tree into the mount, tar x back out, diff -r', async (t) => {
  t.timeout(120_000);
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const src = join(local, 'src');
  await makeTree(src, 150, 5);
  await run('head -c 5500000 /dev/urandom > big.bin && ln -s dir-0 link && chmod 700 dir-1 && chmod 600 dir-0/file-0.dat && mkdir empty-dir', { cwd: src });
  const into = join(mnt[0]!.dir, 'unpacked');
  await mkdir(join(local, 'out'));
  await run(`mkdir ${q(into)} && tar cf - -C ${q(src)} . | tar xpf - -C ${q(into)}`, { timeoutMs: 100_000 });
  await run(`tar cf - -C ${q(into)} . | tar xpf - -C ${q(join(local, 'out'))}`);
  await run(`diff -r --no-dereference ${q(src)} ${q(join(local, 'out'))}`);
  const listing = String.raw`find . -printf '%p|%y|%m|%l\n' | sort`;
  t.is(await run(listing, { cwd: join(local, 'out') }), await run(listing, { cwd: src }));
  t.is(await run(listing, { cwd: into }), await run(listing, { cwd: src }));
});

test.serial('rsync -a round trip; a second rsync -ai transfers nothing, a changed file is the only one sent', async (t) => {
  t.timeout(150_000);
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const src = join(local, 'src');
  await makeTree(src, 200, 5);
  // Times in the past, each its own to the nanosecond: rsync (--modify-window 0) compares whole seconds, so a
  // tree made this second would pass with any time the mount kept.
  await run(
    String.raw`ln -s dir-0 link && chmod 750 dir-2 && i=0 && find . -depth | while read -r p; do i=$((i+1)); touch -h -d "@$((1300000000 + i * 3607)).$(printf %09d $((i * 7919)))" "$p"; done`,
    { cwd: src },
  );
  const remote = join(mnt[0]!.dir, 'r');
  await run(`rsync -a ${q(src)}/ ${q(remote)}/`, { timeoutMs: 120_000 });
  t.is(await run(`rsync -ai ${q(src)}/ ${q(remote)}/`), '', 'nothing to transfer the second time');
  t.is(await run(`rsync -ai --checksum ${q(src)}/ ${q(remote)}/`), '', 'the contents match too');
  const back = join(local, 'back');
  await run(`rsync -a ${q(remote)}/ ${q(back)}/`);
  await run(`diff -r --no-dereference ${q(src)} ${q(back)}`);
  t.is(await run(`rsync -ai ${q(remote)}/ ${q(back)}/`), '');
  const listing = String.raw`find . -printf '%p|%y|%m|%T@\n' | sort`;
  t.is(await run(listing, { cwd: back }), await run(listing, { cwd: src }));
  // Not vacuous: a change is seen and sent, and then nothing again.
  await writeFile(join(src, 'dir-1/file-4.dat'), 'changed\n');
  t.regex(await run(`rsync -ai ${q(src)}/ ${q(remote)}/`), /^>f[.a-z+]+ dir-1\/file-4\.dat\n$/);
  t.is(await run(`rsync -ai ${q(src)}/ ${q(remote)}/`), '');
  t.is(await run(`cat ${q(join(remote, 'dir-1/file-4.dat'))}`), 'changed\n');
});

test.serial('git init, add, commit in the mount: status clean, fsck ok, the same tree as a local repository', async (t) => {
  t.timeout(120_000);
  const { mnt } = await setup(t);
  const local = await localDir(t);
  const home = await localDir(t, 'dfs-home-');
  const gitEnv = {
    ...env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'T',
    GIT_AUTHOR_EMAIL: 't@example.com',
    GIT_COMMITTER_NAME: 'T',
    GIT_COMMITTER_EMAIL: 't@example.com',
  };
  const script = String.raw`
    set -e
    git init -q -b main repo && cd repo
    mkdir -p src/lib docs
    for i in $(seq 1 30); do printf 'line %s\n' $(seq 1 $i) > src/lib/m$i.txt; done
    printf '# readme\n' > README.md; printf '#!/bin/sh\necho hi\n' > run.sh; chmod +x run.sh
    ln -s README.md docs/link
    git add -A && git commit -q -m first
    printf 'more\n' >> README.md; git rm -q src/lib/m1.txt; git mv src/lib/m2.txt docs/m2.txt
    git add -A && git commit -q -m second
    git status --porcelain
    git fsck --full --strict 2>&1
    git gc -q --prune=now 2>&1
    git fsck --full --strict 2>&1
    git status --porcelain
    git log --format=%s
    git rev-parse HEAD^{tree}
    git ls-files -s | sort | sha256sum
  `;
  const out = await bothGit(local, mnt[0]!.dir, script, 100_000).catch(async (err: Error) => {
    t.log(await sh('ls -la repo repo/.git', { cwd: mnt[0]!.dir }).then((r) => r.stdout + r.stderr));
    throw err;
  });
  t.is(out.mounted, out.local);
  t.regex(out.mounted, /^second\nfirst\n[0-9a-f]{40}\n[0-9a-f]{64} {2}-\n$/);
  const dir = join(mnt[0]!.dir, 'repo');
  t.is(await run('git status --porcelain --ignored && git diff HEAD --stat', { cwd: dir, env: gitEnv }), '');
  t.is(await run('cat README.md && test -x run.sh && readlink docs/link', { cwd: dir }), '# readme\nmore\nREADME.md\n');
  function bothGit(l: string, m: string, s: string, timeoutMs: number): Promise<{ local: string; mounted: string }> {
    return Promise.all([run(s, { cwd: l, env: gitEnv, timeoutMs }), run(s, { cwd: m, env: gitEnv, timeoutMs })]).then(([a, b]) => ({ local: a, mounted: b }));
  }
});

test.serial('a 200 MiB file: cp in from a local random file, sha256sum in the mount and in a fresh mount', async (t) => {
  t.timeout(170_000);
  const { cluster, mnt } = await setup(t);
  const local = await localDir(t);
  const source = join(local, 'random.bin');
  await run(`head -c 200M /dev/urandom > ${q(source)}`);
  const expected = await sha256File(source);
  const started = Date.now();
  await run(`cp ${q(source)} ${q(join(mnt[0]!.dir, 'big.bin'))}`, { timeoutMs: 150_000 });
  t.log(`cp of 200 MiB: ${Date.now() - started} ms`);
  t.is(await run(`stat -c %s ${q(join(mnt[0]!.dir, 'big.bin'))}`), `${200 * 1024 * 1024}\n`);
  t.is((await run(`sha256sum ${q(join(mnt[0]!.dir, 'big.bin'))}`)).split(' ')[0], expected);
  // A mount with an empty cache reads every chunk from the storage servers.
  const fresh = await startMount(t, cluster, ['--cache-size', '16M']);
  t.is((await run(`dd if=${q(join(fresh.dir, 'big.bin'))} bs=1M status=none | sha256sum`)).split(' ')[0], expected);
  // dd writes the same bytes again under another name (every chunk already stored: nothing to upload).
  await run(`dd if=${q(source)} of=${q(join(mnt[0]!.dir, 'again.bin'))} bs=1M status=none`, { timeoutMs: 120_000 });
  t.is((await run(`sha256sum < ${q(join(fresh.dir, 'again.bin'))}`)).split(' ')[0], expected);
});
