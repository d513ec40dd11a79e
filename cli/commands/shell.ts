import { createInterface } from 'node:readline/promises';
import { DfsError } from '../../protocol/errors.js';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';

/** Splits a command line into words, honouring single and double quotes and backslashes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new DfsError('EINVAL', 'unclosed quote');
  if (inWord) words.push(word);
  return words;
}

/** Runs one parsed command line of the shell; set by main.ts, which knows every command. */
export type LineRunner = (words: string[], ctx: CommandContext) => Promise<void>;

export function shellCommand(runLine: LineRunner) {
  return defineCommand({
    command: 'shell',
    describe: 'an interactive shell on the store: cd, pwd, and every client command, relative to the current directory',
    builder: (y) => y.example('dfs shell', 'then: mkdir docs, cd docs, put ./a.txt ., ls -l'),
    run: async (_args, ctx) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
      const prompt = (): string => `dfs:${ctx.cwd}> `;
      // Pipe-fed shells read every line even if a command ends the input early.
      const lines = rl[Symbol.asyncIterator]();
      if (process.stdin.isTTY) process.stdout.write(prompt());
      for (;;) {
        const next = await lines.next();
        if (next.done) break;
        const line = next.value.trim();
        if (line && !line.startsWith('#')) {
          try {
            const words = splitWords(line);
            const [cmd, ...rest] = words;
            if (cmd === 'exit' || cmd === 'quit') break;
            if (cmd === 'pwd') process.stdout.write(`${ctx.cwd}\n`);
            else if (cmd === 'cd') {
              const target = ctx.resolve(rest[0] ?? '/');
              const attr = await ctx.client.stat(target);
              if (attr.type !== 'dir') throw new DfsError('ENOTDIR', `${target}: not a directory`);
              ctx.cwd = target;
            } else {
              await runLine(words, ctx);
            }
          } catch (err) {
            process.stderr.write(`dfs: ${(err as Error).message}\n`);
          }
        }
        if (process.stdin.isTTY) process.stdout.write(prompt());
      }
      rl.close();
    },
    inShell: false,
  });
}
