import type { Argv } from 'yargs';
import type { CommandContext } from './context.js';

/** One CLI command: its yargs definition and what it does with the parsed arguments. */
export interface DfsCommand<A = any> {
  command: string | readonly string[];
  describe: string;
  builder: (yargs: Argv) => Argv<A>;
  run: (args: A, ctx: CommandContext) => Promise<void>;
  /** Usable inside `dfs shell` (client commands are; daemons are not). */
  inShell: boolean;
}

export function defineCommand<A>(command: DfsCommand<A>): DfsCommand<A> {
  return command;
}

/** Options every client command takes. */
export function clientOptions(yargs: Argv) {
  return yargs
    .option('name-server', { type: 'string', describe: 'name server URL (or DFS_NAME_SERVER; default: the cluster `dfs up` started)' })
    .option('secret-file', { type: 'string', describe: 'file holding the cluster secret (or DFS_SECRET / DFS_SECRET_FILE)' })
    .option('state', { type: 'string', describe: 'state directory of `dfs up` whose cluster to use' });
}
