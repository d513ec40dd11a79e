import type { Router } from 'express';
import { serve } from '../../../protocol/express.js';
import { nameApi } from '../../../protocol/name-api.js';
import type { ChunkService } from '../chunk-service.js';
import type { Namespace } from '../namespace.js';

/** The namespace API, by path. */
export function fsRoutes(router: Router, secret: string, ns: Namespace, chunks: ChunkService): void {
  serve(router, secret, nameApi.stat, (input) => ns.stat(input.path));
  serve(router, secret, nameApi.list, (input) => ns.list(input.path));
  serve(router, secret, nameApi.mkdir, (input) => ns.mkdir(input.path, input.mode, input.uid, input.gid, input.parents));
  serve(router, secret, nameApi.create, (input) => ns.create(input.path, input.mode, input.uid, input.gid, input.rdev, input.exclusive));
  serve(router, secret, nameApi.commit, (input) => chunks.commit(input));
  serve(router, secret, nameApi.rename, async (input) => {
    const replaced = await ns.rename(input.from, input.to, input.noReplace);
    return replaced === undefined ? {} : { replaced };
  });
  serve(router, secret, nameApi.unlink, async (input) => ({ ino: await ns.unlink(input.path) }));
  serve(router, secret, nameApi.rmdir, async (input) => {
    await ns.rmdir(input.path);
    return {};
  });
  serve(router, secret, nameApi.setattr, ({ path, ...patch }) => ns.setattr(path, patch));
  serve(router, secret, nameApi.symlink, (input) => ns.symlink(input.path, input.target, input.uid, input.gid));
  serve(router, secret, nameApi.readlink, async (input) => ({ target: await ns.readlink(input.path) }));
  serve(router, secret, nameApi.link, (input) => ns.link(input.existing, input.path));
  serve(router, secret, nameApi.copy, (input) => ns.copy(input.from, input.to, input.overwrite, input.uid, input.gid));
  serve(router, secret, nameApi.info, (input) => chunks.info(input.path));
  serve(router, secret, nameApi.sync, async () => {
    await ns.sync();
    return {};
  });
  serve(router, secret, nameApi.getxattr, async (input) => ({ value: (await ns.getXattr(input.path, input.name)).toString('base64') }));
  serve(router, secret, nameApi.listxattr, async (input) => ({ names: await ns.listXattrs(input.path) }));
  serve(router, secret, nameApi.setxattr, async (input) => {
    await ns.setXattr(input.path, input.name, Buffer.from(input.value, 'base64'), input.flags);
    return {};
  });
  serve(router, secret, nameApi.removexattr, async (input) => {
    await ns.removeXattr(input.path, input.name);
    return {};
  });
}
