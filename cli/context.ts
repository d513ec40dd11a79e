import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DfsClient } from '../client/dfs-client.js';
import { loadSecret } from '../common/secret.js';
import { DfsError } from '../protocol/errors.js';
import { resolvePath } from '../protocol/names.js';

/** Where `dfs up` keeps its state, and where client commands look for the config it writes. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DFS_STATE) return env.DFS_STATE;
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'dfs');
}

/** The client config `dfs up` writes into its state directory. */
export interface ClientConfig {
  nameServer: string;
  secretFile: string;
}

export const CLIENT_CONFIG_FILE = 'client.json';

function readClientConfig(stateDir: string): ClientConfig | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, CLIENT_CONFIG_FILE), 'utf8')) as ClientConfig;
  } catch {
    return undefined;
  }
}

export interface ClientFlags {
  nameServer?: string | undefined;
  secretFile?: string | undefined;
  state?: string | undefined;
}

/**
 * The client's cluster: flags first, then DFS_NAME_SERVER / DFS_SECRET / DFS_SECRET_FILE, then the
 * config `dfs up` left in the state directory.
 */
export function resolveClientConfig(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): { nameServerUrl: string; secret: string } {
  const fromState = readClientConfig(flags.state ?? defaultStateDir(env));
  const nameServerUrl = flags.nameServer ?? env.DFS_NAME_SERVER ?? fromState?.nameServer;
  if (!nameServerUrl) {
    throw new DfsError('EINVAL', 'no name server: pass --name-server URL, set DFS_NAME_SERVER, or start a local cluster with `dfs up`');
  }
  const secretFile = flags.secretFile ?? env.DFS_SECRET_FILE ?? (env.DFS_SECRET ? undefined : fromState?.secretFile);
  return { nameServerUrl, secret: loadSecret(secretFile, env) };
}

/** What every client command gets: a client of the cluster and a working directory for relative paths. */
export class CommandContext {
  cwd = '/';
  private clientInstance: DfsClient | undefined;

  constructor(private readonly makeClient: () => DfsClient) {}

  get client(): DfsClient {
    this.clientInstance ??= this.makeClient();
    return this.clientInstance;
  }

  /** An absolute store path for a path as typed (relative to the shell's directory). */
  resolve(path: string): string {
    return resolvePath(this.cwd, path);
  }
}
