/**
 * A client of the cluster that runs on a client host (inside its network namespace) and takes orders
 * from the test, which lives outside every namespace and so cannot reach the cluster itself. One JSON
 * request per line on stdin, one JSON reply per line on stdout, matched by id; requests run concurrently.
 *
 *   {"id":1,"op":"ns","route":"status","input":{}}        any name-server route, by its name in nameApi
 *   {"id":2,"op":"write","path":"/a.bin","size":1048576}   random bytes; replies with their SHA-256
 *   {"id":3,"op":"read","path":"/a.bin"}                   the whole file; replies with size and SHA-256
 *
 * The cluster comes from DFS_NAME_SERVER and DFS_SECRET_FILE, as the `dfs` command on a provisioned host.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { DfsClient } from '../../client/dfs-client.js';
import { loadSecret } from '../../common/secret.js';
import { DfsError } from '../../protocol/errors.js';
import { nameApi } from '../../protocol/name-api.js';

interface Request {
  id: number;
  op: 'ns' | 'write' | 'read';
  route?: string;
  input?: unknown;
  path?: string;
  size?: number;
}

const nameServerUrl = process.env.DFS_NAME_SERVER;
if (!nameServerUrl) throw new Error('DFS_NAME_SERVER is not set');
const client = new DfsClient({ nameServerUrl, secret: loadSecret(process.env.DFS_SECRET_FILE) });

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'ns': {
      const route = (nameApi as Record<string, (typeof nameApi)[keyof typeof nameApi]>)[req.route ?? ''];
      if (!route) throw new DfsError('EINVAL', `no route ${req.route}`);
      return client.ns.call(route, (req.input ?? {}) as never);
    }
    case 'write': {
      const data = randomBytes(req.size ?? 0);
      const started = Date.now();
      await client.writeFile(req.path!, { size: data.length, read: async (offset, length) => data.subarray(offset, offset + length) });
      return { path: req.path, size: data.length, sha: createHash('sha256').update(data).digest('hex'), ms: Date.now() - started };
    }
    case 'read': {
      const hash = createHash('sha256');
      let size = 0;
      for await (const part of client.readFile(req.path!)) {
        hash.update(part);
        size += part.length;
      }
      return { path: req.path, size, sha: hash.digest('hex') };
    }
    default:
      throw new DfsError('EINVAL', `unknown op ${String(req.op)}`);
  }
}

function reply(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let req: Request;
  try {
    req = JSON.parse(line) as Request;
  } catch {
    return;
  }
  handle(req).then(
    (result) => reply({ id: req.id, ok: true, result }),
    (err: unknown) => reply({ id: req.id, ok: false, error: { code: err instanceof DfsError ? err.code : 'EIO', message: err instanceof Error ? err.message : String(err) } }),
  );
});
process.stdin.on('end', () => process.exit(0));
reply({ msg: 'agent ready', pid: process.pid });
