#!/usr/bin/env node
// The `finetorch` command. Subcommands: inspect (more come with the CLI issue).
import { inspect, formatReport } from './inspect.js';

const USAGE = `usage: finetorch <command> [options]

commands:
  inspect <checkpoint> [--json]   format, architecture guess, parameter count, dtypes, blocks and head
`;

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'inspect') {
    const json = rest.includes('--json');
    const files = rest.filter((a) => a !== '--json');
    if (files.length !== 1) {
      process.stderr.write('finetorch inspect: expected one checkpoint path\n' + USAGE);
      return 2;
    }
    try {
      const report = inspect(files[0]);
      process.stdout.write((json ? JSON.stringify(report) : formatReport(report)) + '\n');
      return 0;
    } catch (err) {
      process.stderr.write(`finetorch inspect: ${(err as Error).message}\n`);
      return 1;
    }
  }
  process.stderr.write(`finetorch: unknown command '${command}'\n` + USAGE);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
