import type { RouteTable } from '../../../protocol/route-table.js';
import { nameApi } from '../../../protocol/name-api.js';
import type { ChunkService } from '../chunk-service.js';
import type { Namespace } from '../namespace.js';

/** The namespace API, by path. */
export function fsRoutes(routes: RouteTable, ns: Namespace, chunks: ChunkService): void {
  routes.serve(nameApi.stat, (input) => ns.stat(input.path));
  routes.serve(nameApi.list, (input) => ns.list(input.path));
  routes.serve(nameApi.mkdir, (input, ctx) => ns.by(ctx.claims?.client, () => ns.mkdir(input.path, input.mode, input.uid, input.gid, input.parents)));
  routes.serve(nameApi.create, (input, ctx) => ns.by(ctx.claims?.client, () => ns.create(input.path, input.mode, input.uid, input.gid, input.rdev, input.exclusive)));
  routes.serve(nameApi.commit, (input, ctx) => chunks.commit(input, ctx.claims?.client));
  routes.serve(nameApi.rename, async (input, ctx) => {
    const replaced = await ns.by(ctx.claims?.client, () => ns.rename(input.from, input.to, input.noReplace));
    return replaced === undefined ? {} : { replaced };
  });
  routes.serve(nameApi.unlink, async (input, ctx) => ({ ino: await ns.by(ctx.claims?.client, () => ns.unlink(input.path)) }));
  routes.serve(nameApi.rmdir, async (input, ctx) => {
    await ns.by(ctx.claims?.client, () => ns.rmdir(input.path));
    return {};
  });
  routes.serve(nameApi.setattr, ({ path, ...patch }, ctx) => ns.by(ctx.claims?.client, () => ns.setattr(path, patch)));
  routes.serve(nameApi.symlink, (input, ctx) => ns.by(ctx.claims?.client, () => ns.symlink(input.path, input.target, input.uid, input.gid)));
  routes.serve(nameApi.readlink, async (input) => ({ target: await ns.readlink(input.path) }));
  routes.serve(nameApi.link, (input, ctx) => ns.by(ctx.claims?.client, () => ns.link(input.existing, input.path)));
  routes.serve(nameApi.copy, (input, ctx) => ns.by(ctx.claims?.client, () => ns.copy(input.from, input.to, input.overwrite, input.uid, input.gid)));
  routes.serve(nameApi.info, (input) => chunks.info(input.path));
  routes.serve(nameApi.sync, async () => {
    await ns.sync();
    return {};
  });
  routes.serve(nameApi.changes, (input, ctx) => ns.changes.read(input.epoch, input.since, ctx.claims?.client, input.waitMs));
  routes.serve(nameApi.getxattr, async (input) => ({ value: (await ns.getXattr(input.path, input.name)).toString('base64') }));
  routes.serve(nameApi.listxattr, async (input) => ({ names: await ns.listXattrs(input.path) }));
  routes.serve(nameApi.setxattr, async (input, ctx) => {
    await ns.by(ctx.claims?.client, () => ns.setXattr(input.path, input.name, Buffer.from(input.value, 'base64'), input.flags));
    return {};
  });
  routes.serve(nameApi.removexattr, async (input, ctx) => {
    await ns.by(ctx.claims?.client, () => ns.removeXattr(input.path, input.name));
    return {};
  });
}
