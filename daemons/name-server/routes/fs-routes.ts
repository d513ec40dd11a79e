import type { RouteTable } from '../../../protocol/route-table.js';
import { nameApi } from '../../../protocol/name-api.js';
import type { ChunkService } from '../chunk-service.js';
import type { Namespace } from '../namespace.js';

/** The namespace API, by path. */
export function fsRoutes(routes: RouteTable, ns: Namespace, chunks: ChunkService): void {
  routes.serve(nameApi.stat, (input) => ns.stat(input.path));
  routes.serve(nameApi.list, (input) => ns.list(input.path));
  routes.serve(nameApi.mkdir, (input) => ns.mkdir(input.path, input.mode, input.uid, input.gid, input.parents));
  routes.serve(nameApi.create, (input) => ns.create(input.path, input.mode, input.uid, input.gid, input.rdev, input.exclusive));
  routes.serve(nameApi.commit, (input) => chunks.commit(input));
  routes.serve(nameApi.rename, async (input) => {
    const replaced = await ns.rename(input.from, input.to, input.noReplace);
    return replaced === undefined ? {} : { replaced };
  });
  routes.serve(nameApi.unlink, async (input) => ({ ino: await ns.unlink(input.path) }));
  routes.serve(nameApi.rmdir, async (input) => {
    await ns.rmdir(input.path);
    return {};
  });
  routes.serve(nameApi.setattr, ({ path, ...patch }) => ns.setattr(path, patch));
  routes.serve(nameApi.symlink, (input) => ns.symlink(input.path, input.target, input.uid, input.gid));
  routes.serve(nameApi.readlink, async (input) => ({ target: await ns.readlink(input.path) }));
  routes.serve(nameApi.link, (input) => ns.link(input.existing, input.path));
  routes.serve(nameApi.copy, (input) => ns.copy(input.from, input.to, input.overwrite, input.uid, input.gid));
  routes.serve(nameApi.info, (input) => chunks.info(input.path));
  routes.serve(nameApi.sync, async () => {
    await ns.sync();
    return {};
  });
  routes.serve(nameApi.getxattr, async (input) => ({ value: (await ns.getXattr(input.path, input.name)).toString('base64') }));
  routes.serve(nameApi.listxattr, async (input) => ({ names: await ns.listXattrs(input.path) }));
  routes.serve(nameApi.setxattr, async (input) => {
    await ns.setXattr(input.path, input.name, Buffer.from(input.value, 'base64'), input.flags);
    return {};
  });
  routes.serve(nameApi.removexattr, async (input) => {
    await ns.removeXattr(input.path, input.name);
    return {};
  });
}
