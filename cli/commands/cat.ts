import { defineCommand } from '../command.js';

export const cat = defineCommand({
  command: 'cat <paths..>',
  describe: 'print files to standard output',
  builder: (y) => y.positional('paths', { type: 'string', array: true, demandOption: true }).example('dfs cat /notes.txt', 'print a file'),
  run: async (args, ctx) => {
    for (const raw of args.paths) {
      for await (const data of ctx.client.readFile(ctx.resolve(raw))) {
        if (!process.stdout.write(data)) await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
    }
  },
  inShell: true,
});
