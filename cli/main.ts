#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DfsClient } from '../client/dfs-client.js';
import { clientOptions, type DfsCommand } from './command.js';
import { CommandContext, resolveClientConfig, type ClientFlags } from './context.js';
import { cat } from './commands/cat.js';
import { get } from './commands/get.js';
import { info } from './commands/info.js';
import { ls } from './commands/ls.js';
import { mount } from './commands/mount.js';
import { cp, mkdir, mv, rmdir, touch } from './commands/namespace-ops.js';
import { nameServer } from './commands/name-server.js';
import { put } from './commands/put.js';
import { rm } from './commands/rm.js';
import { shellCommand } from './commands/shell.js';
import { status } from './commands/status.js';
import { storageServer } from './commands/storage-server.js';
import { up } from './commands/up.js';

const clientCommands: DfsCommand[] = [ls, cat, put, get, cp, mv, rm, mkdir, rmdir, touch, info, status];
const daemonCommands: DfsCommand[] = [up, mount, nameServer, storageServer];

/** A parser for a whole command line (`dfs …`) or for one line typed in `dfs shell`. */
function buildParser(argv: string[], ctx: CommandContext, flags: ClientFlags, commands: DfsCommand[]): Argv {
  let parser = yargs(argv)
    .scriptName('dfs')
    .usage('$0 <command> [options]\n\nA fault-tolerant distributed file store.')
    .option('verbose', { type: 'boolean', default: false, describe: 'print stack traces of errors' })
    .strict()
    .demandCommand(1, 'name a command (dfs --help lists them)')
    .recommendCommands()
    .exitProcess(false)
    .fail((message, err) => {
      if (err) throw err;
      // yargs reports a near miss ("Did you mean rm?") before, and instead of, the unknown command itself.
      const unknown = argv.find((word) => !word.startsWith('-'));
      throw new UsageError(/^Did you mean/.test(message) && unknown ? `unknown command: ${unknown}. ${message}` : message);
    })
    .middleware((args) => {
      flags.nameServer = args['name-server'] as string | undefined;
      flags.secretFile = args['secret-file'] as string | undefined;
      flags.state = args.state as string | undefined;
    })
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100));
  for (const def of commands) {
    const isClient = clientCommands.includes(def);
    parser = parser.command(
      def.command as string,
      def.describe,
      (y: Argv) => (isClient ? def.builder(clientOptions(y)) : def.builder(y)),
      async (args: unknown) => def.run(args, ctx),
    );
  }
  return parser;
}

class UsageError extends Error {}

function makeContext(flags: ClientFlags): CommandContext {
  return new CommandContext(() => new DfsClient(resolveClientConfig(flags)));
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  const flags: ClientFlags = {};
  const ctx = makeContext(flags);
  const shell = shellCommand(async (words, shellCtx) => {
    await buildParser(words, shellCtx, flags, clientCommands).parseAsync();
  });
  try {
    await buildParser(argv, ctx, flags, [...clientCommands, shell, ...daemonCommands]).parseAsync();
  } catch (err) {
    const verbose = argv.includes('--verbose');
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`dfs: ${verbose && err instanceof Error ? err.stack : message}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

await main();
