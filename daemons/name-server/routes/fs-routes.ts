import type { z } from 'zod';
import type { Output, Route } from '../../../protocol/contract.js';
import type { RouteTable } from '../../../protocol/route-table.js';
import { nameApi } from '../../../protocol/name-api.js';
import type { ChunkService } from '../chunk-service.js';
import type { Namespace } from '../namespace.js';

/** The namespace API, by path. */
export function fsRoutes(routes: RouteTable, ns: Namespace, chunks: ChunkService): void {
  /**
   * A route that changes the namespace for the calling client, whom the change feed then leaves out (it
   * knows what it did). The handler's first step must be the namespace call: `by` holds the origin only
   * until then.
   */
  const serveChange = <R extends Route>(r: R, handler: (input: z.output<R['input']>) => Promise<Output<R>>): void =>
    routes.serve(r, (input, ctx) => ns.by(ctx.claims?.client, () => handler(input)));

  routes.serve(nameApi.stat, (input) => ns.stat(input.path));
  routes.serve(nameApi.list, (input) => ns.list(input.path));
  serveChange(nameApi.mkdir, (input) => ns.mkdir(input.path, input.mode, input.uid, input.gid, input.parents));
  serveChange(nameApi.create, (input) => ns.create(input.path, input.mode, input.uid, input.gid, input.rdev, input.exclusive));
  // A commit or an append reaches the namespace after its own awaits (the chunks' quorum, reading the file):
  // it passes the origin on itself.
  routes.serve(nameApi.commit, (input, ctx) => chunks.commit(input, ctx.claims?.client));
  routes.serve(nameApi.append, (input, ctx) => chunks.append(input, ctx.claims?.client));
  serveChange(nameApi.rename, async (input) => {
    const replaced = await ns.rename(input.from, input.to, input.noReplace);
    return replaced === undefined ? {} : { replaced };
  });
  serveChange(nameApi.unlink, async (input) => ({ ino: await ns.unlink(input.path) }));
  serveChange(nameApi.rmdir, async (input) => {
    await ns.rmdir(input.path);
    return {};
  });
  serveChange(nameApi.setattr, ({ path, ...patch }) => ns.setattr(path, patch));
  serveChange(nameApi.symlink, (input) => ns.symlink(input.path, input.target, input.uid, input.gid));
  routes.serve(nameApi.readlink, async (input) => ({ target: await ns.readlink(input.path) }));
  serveChange(nameApi.link, (input) => ns.link(input.existing, input.path));
  serveChange(nameApi.copy, (input) => ns.copy(input.from, input.to, input.overwrite, input.uid, input.gid));
  routes.serve(nameApi.info, (input) => chunks.info(input.path));
  routes.serve(nameApi.sync, async () => {
    await ns.sync();
    return {};
  });
  routes.serve(nameApi.changes, (input, ctx) => ns.changes.read(input.epoch, input.since, ctx.claims?.client, input.waitMs));
  routes.serve(nameApi.getxattr, async (input) => ({ value: (await ns.getXattr(input.path, input.name)).toString('base64') }));
  routes.serve(nameApi.listxattr, async (input) => ({ names: await ns.listXattrs(input.path) }));
  serveChange(nameApi.setxattr, async (input) => {
    await ns.setXattr(input.path, input.name, Buffer.from(input.value, 'base64'), input.flags);
    return {};
  });
  serveChange(nameApi.removexattr, async (input) => {
    await ns.removeXattr(input.path, input.name);
    return {};
  });
}
