// `finetorch train --nproc-per-node N [--nnodes M --node-rank R --master-addr A
// --master-port P]`: the command line of the launcher (lib/distributed/launch.ts).
// The parent does not train: it starts N children of the same command without
// the launcher flags, with torchrun's environment.
import { parseArgs, type FlagSpec } from './args.js';
import { usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';
import { ArgumentError } from '../errors.js';
import {
  checkLaunchOptions,
  DEFAULT_MASTER_ADDR,
  describeExit,
  launch,
  writeOutput,
  type LaunchOptionNames,
  type LaunchOptions,
} from '../distributed/launch.js';

const FLAG_NAMES: LaunchOptionNames = {
  nprocPerNode: '--nproc-per-node',
  nnodes: '--nnodes',
  nodeRank: '--node-rank',
  masterAddr: '--master-addr',
  masterPort: '--master-port',
};

export const LAUNCH_FLAGS: Record<string, FlagSpec> = {
  'nproc-per-node': { type: 'positiveInt', arg: 'n', help: 'launch n training processes on this machine (torchrun style; rank 0 writes the run folder)' },
  nnodes: { type: 'positiveInt', arg: 'n', help: 'machines in the job (default 1); start the same command on each' },
  'node-rank': { type: 'int', arg: 'k', help: "this machine's index, 0..nnodes-1 (default 0; node 0 hosts the master)" },
  'master-addr': { type: 'string', arg: 'address', help: `address of node 0 (default ${DEFAULT_MASTER_ADDR})` },
  'master-port': { type: 'int', arg: 'port', help: 'its port (default: a free one; required with --nnodes > 1)' },
};

/** Whether argv asks for the launcher (any of its flags, as --name or --name=value, before a `--`). */
export function wantsLaunch(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a.startsWith('--') && a.slice(2).split('=')[0] in LAUNCH_FLAGS);
}

/** Takes the launcher's flags out of argv: the launch options, and the rest for the children. */
export function splitLaunchArgs(command: string, argv: string[]): { options: Omit<LaunchOptions, 'command' | 'args'>; rest: string[] } {
  const mine: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const name = a.startsWith('--') ? a.slice(2).split('=')[0] : '';
    if (name in LAUNCH_FLAGS) {
      mine.push(a);
      if (!a.includes('=') && i + 1 < argv.length) mine.push(argv[++i]);
    } else rest.push(a);
  }
  const { flags } = parseArgs(command, mine, LAUNCH_FLAGS);
  if (flags['nproc-per-node'] === undefined)
    throw new UsageError('--nnodes, --node-rank, --master-addr and --master-port go with --nproc-per-node <n>', command);
  const options = {
    nprocPerNode: flags['nproc-per-node'] as number,
    nnodes: flags.nnodes as number | undefined,
    nodeRank: flags['node-rank'] as number | undefined,
    masterAddr: flags['master-addr'] as string | undefined,
    masterPort: flags['master-port'] as number | undefined,
  };
  try {
    checkLaunchOptions({ ...options, command: 'finetorch', args: [] }, FLAG_NAMES);
  } catch (err) {
    throw err instanceof ArgumentError ? new UsageError(err.detail, command) : err;
  }
  return { options, rest };
}

/**
 * Runs a command's launcher mode: parses and checks the launcher flags (usage
 * errors exit 2), starts the children that `child(rest)` names, and returns the
 * exit code, with a message naming the rank when one failed. Output: on a
 * terminal (or --pretty) the children print text (--pretty is passed on) and
 * every line is prefixed `[rank k] `; otherwise (or --json) rank 0's stdout,
 * its JSON Lines events, passes through unprefixed as the job's one event
 * stream and every other line goes to stderr, prefixed.
 */
export async function launchCli(
  command: string,
  argv: string[],
  usage: string,
  child: (rest: string[]) => { command: string; args: string[] },
  extra: Pick<LaunchOptions, 'graceMs' | 'env'> = {},
): Promise<number> {
  let split: ReturnType<typeof splitLaunchArgs>;
  try {
    split = splitLaunchArgs(command, argv);
  } catch (err) {
    return usageFailure(command, argv, err, usage);
  }
  const { options, rest } = split;
  if (rest.includes('--help')) {
    process.stdout.write(usage);
    return EXIT.ok;
  }
  const json = rest.includes('--json') || (!rest.includes('--pretty') && !process.stdout.isTTY);
  const childArgs = json || rest.includes('--pretty') ? rest : [...rest, '--pretty'];
  try {
    const r = await launch({ ...options, ...extra, ...child(childArgs), onOutput: writeOutput(json ? 'plain' : 'prefixed') }, FLAG_NAMES);
    if (r.failed) process.stderr.write(`finetorch ${command}: ${describeExit(r.failed)}; stopped the other ranks\n`);
    else if (r.interrupted && r.exitCode) process.stderr.write(`finetorch ${command}: interrupted; every rank has stopped\n`);
    return r.exitCode;
  } catch (err) {
    if (err instanceof ArgumentError) return usageFailure(command, argv, new UsageError(err.detail, command), usage);
    process.stderr.write(`finetorch ${command}: ${(err as Error).message}\n`);
    return EXIT.runtime;
  }
}
