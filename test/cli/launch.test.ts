// The launcher of `finetorch train --nproc-per-node N` (lib/cli/launch.ts)
// with real processes: tiny node scripts (not training) that print their
// environment, fail on one rank, hang, or wait for Ctrl-C; the launcher's
// command line through a small wrapper and through the real CLI.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { splitLaunchArgs } from '../../dist/cli/launch.js';
import { launch, type OutputLine } from '../../dist/distributed/launch.js';

const root = resolve(__dirname, '..', '..');
const CLI = join(root, 'dist', 'cli', 'main.js');
let dir: string;
const script = (name: string) => join(dir, name);

const SCRIPTS: Record<string, string> = {
  // its environment as one JSON line, its arguments, a line on stderr
  'env.mjs': `const e = process.env;
console.log(JSON.stringify({ RANK: e.RANK, LOCAL_RANK: e.LOCAL_RANK, WORLD_SIZE: e.WORLD_SIZE, LOCAL_WORLD_SIZE: e.LOCAL_WORLD_SIZE, MASTER_ADDR: e.MASTER_ADDR, MASTER_PORT: e.MASTER_PORT, FINETORCH_RANK_LOG: e.FINETORCH_RANK_LOG ?? null, FINETORCH_LAUNCHER_PID: e.FINETORCH_LAUNCHER_PID, FINETORCH_NUM_THREADS: e.FINETORCH_NUM_THREADS, argv: process.argv.slice(2) }));
console.error('hello from ' + e.RANK);`,
  // rank 1 exits 3 soon; the others hang and ignore SIGTERM (only SIGKILL ends them)
  'fail-rank1.mjs': `process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
console.log('up');
if (process.env.RANK === '1') setTimeout(() => process.exit(3), 200);
else setInterval(() => {}, 1000);`,
  // rank 1 dies by a signal
  'killed-rank1.mjs': `console.log('up');
if (process.env.RANK === '1') setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
else setInterval(() => {}, 1000);`,
  // waits for Ctrl-C, then exits 130 as finetorch train does after its checkpoint
  'interruptible.mjs': `process.on('SIGINT', () => { console.log('got SIGINT'); process.exit(130); });
console.log('ready');
setInterval(() => {}, 1000);`,
  // the launcher's command line (launchCli) running a script instead of finetorch train
  'wrapper.mjs': `import { launchCli } from ${JSON.stringify(join(root, 'dist', 'cli', 'launch.js'))};
const [childScript, graceMs, ...argv] = process.argv.slice(2);
process.exitCode = await launchCli('train', argv, 'usage: test\\n', (rest) => ({ command: process.execPath, args: [childScript, ...rest] }), { graceMs: Number(graceMs) });`,
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-launch-'));
  for (const [name, text] of Object.entries(SCRIPTS)) writeFileSync(script(name), text);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs launch() on a script and collects its children's lines. */
async function launchScript(
  name: string,
  options: { nprocPerNode: number; nnodes?: number; nodeRank?: number; masterAddr?: string; masterPort?: number; graceMs?: number },
) {
  const lines: OutputLine[] = [];
  const result = await launch({ ...options, command: process.execPath, args: [script(name)], onOutput: (l) => lines.push(l), forwardSignals: false });
  return { result, lines };
}

/** The wrapper as a child process: the launcher's command line, its output and exit code. */
function wrapper(childScript: string, argv: string[], graceMs = 300) {
  return spawnSync(process.execPath, [script('wrapper.mjs'), script(childScript), String(graceMs), ...argv], { encoding: 'utf8', timeout: 15000 });
}

const envOf = (lines: OutputLine[], rank: number) => JSON.parse(lines.find((l) => l.rank === rank && l.stream === 'stdout')!.text);

describe('launch: torchrun environment', () => {
  for (const n of [2, 3]) {
    it(`${n} processes on one node`, async () => {
      const { result, lines } = await launchScript('env.mjs', { nprocPerNode: n });
      expect(result.exitCode).toBe(0);
      expect(result.failed).toBeNull();
      expect(result.exits.map((e) => e.code)).toEqual(new Array(n).fill(0));
      expect(result.masterPort).toBeGreaterThan(0);
      for (let rank = 0; rank < n; rank++) {
        expect(envOf(lines, rank)).toEqual({
          RANK: String(rank),
          LOCAL_RANK: String(rank),
          WORLD_SIZE: String(n),
          LOCAL_WORLD_SIZE: String(n),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(result.masterPort),
          FINETORCH_RANK_LOG: rank === 0 ? null : `rank${rank}.log`,
          // the ranks watch this pid and exit when it is gone (test/distributed/faults.test.ts)
          FINETORCH_LAUNCHER_PID: String(process.pid),
          // cores / N threads each unless the user chose
          FINETORCH_NUM_THREADS:
            process.env.FINETORCH_NUM_THREADS ?? process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / n))),
          argv: [],
        });
        expect(lines).toContainEqual({ rank, stream: 'stderr', text: `hello from ${rank}` });
      }
    });
  }

  it('node 1 of 2: global ranks after node 0, the given master', async () => {
    const { result, lines } = await launchScript('env.mjs', { nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: '10.1.2.3', masterPort: 29511 });
    expect(result.exitCode).toBe(0);
    for (const localRank of [0, 1]) {
      const rank = 2 + localRank;
      expect(envOf(lines, rank)).toMatchObject({
        RANK: String(rank),
        LOCAL_RANK: String(localRank),
        WORLD_SIZE: '4',
        LOCAL_WORLD_SIZE: '2',
        MASTER_ADDR: '10.1.2.3',
        MASTER_PORT: '29511',
        FINETORCH_RANK_LOG: `rank${rank}.log`,
      });
    }
  });
});

describe('launch: failures', () => {
  it('a rank that exits non-zero stops the others (SIGKILL after the grace period) and is named', async () => {
    const t0 = Date.now();
    const r = wrapper('fail-rank1.mjs', ['--nproc-per-node', '3', '--pretty']);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('finetorch train: rank 1 exited with code 3; stopped the other ranks');
    // the others got SIGTERM (which they ignore) and then SIGKILL
    expect(r.stdout).toContain('[rank 0] ignoring SIGTERM');
    expect(r.stdout).toContain('[rank 2] ignoring SIGTERM');
    expect(Date.now() - t0).toBeLessThan(10000);
  });

  it('a rank killed by a signal: named with its signal, exit 128 + signal number', async () => {
    const { result } = await launchScript('killed-rank1.mjs', { nprocPerNode: 2, graceMs: 300 });
    expect(result.failed).toEqual({ rank: 1, code: null, signal: 'SIGKILL' });
    expect(result.exitCode).toBe(137);
    // rank 0 (hanging, honours SIGTERM) was stopped
    expect(result.exits[0]).toEqual({ rank: 0, code: null, signal: 'SIGTERM' });
  });

  it('Ctrl-C is forwarded to every rank; exit 130', async () => {
    const child = spawn(process.execPath, [script('wrapper.mjs'), script('interruptible.mjs'), '300', '--nproc-per-node', '2', '--pretty'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((done) => {
      child.stdout.on('data', (d) => {
        out += d;
        if ((out.match(/ready/g) ?? []).length === 2) child.kill('SIGINT');
      });
      child.on('close', (c) => done(c));
    });
    expect(code).toBe(130);
    expect(out).toContain('[rank 0] got SIGINT');
    expect(out).toContain('[rank 1] got SIGINT');
    expect(err).toContain('interrupted');
  });
});

describe('launch: output and command line', () => {
  it('--pretty: every line prefixed, launcher flags not passed on', () => {
    const r = wrapper('env.mjs', ['--nproc-per-node=2', '--config', 'r.yaml', '--master-addr', '127.0.0.1', '--pretty']);
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n').sort();
    expect(out.map((l) => l.slice(0, 9))).toEqual(['[rank 0] ', '[rank 1] ']);
    expect(JSON.parse(out[1].slice(9)).argv).toEqual(['--config', 'r.yaml', '--pretty']);
    expect(r.stderr.trim().split('\n').sort()).toEqual(['[rank 0] hello from 0', '[rank 1] hello from 1']);
  });

  it('--json: rank 0 stdout passes through unprefixed as the one event stream; the rest goes to stderr, prefixed', () => {
    const r = wrapper('env.mjs', ['--nproc-per-node', '2', '--json']);
    expect(r.status).toBe(0);
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]).RANK).toBe('0');
    const err = r.stderr.trim().split('\n');
    expect(err).toContain('[rank 0] hello from 0');
    expect(err.find((l) => l.startsWith('[rank 1] {'))).toBeDefined();
  });

  describe('master port in use: a clear error before launching', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer();
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((done) => server.close(() => done())));

    it('exit 2, names the port, starts nobody', () => {
      const r = wrapper('env.mjs', ['--nproc-per-node', '2', '--master-port', String(port), '--pretty']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--master-port ${port} is already in use`);
      expect(r.stdout).not.toContain('[rank');
    });
  });

  it('usage errors name the flag', () => {
    const bad: Array<[string[], string]> = [
      [['--nproc-per-node', '0'], '--nproc-per-node: expected a positive integer, got "0"'],
      [['--nproc-per-node', 'two'], '--nproc-per-node: expected a positive integer, got "two"'],
      [['--nnodes', '2'], 'go with --nproc-per-node'],
      [['--nproc-per-node', '2', '--nnodes', '2'], '--master-port is required with --nnodes > 1'],
      [['--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '2', '--master-port', '29500'], '--node-rank 2 is not below --nnodes 2'],
      [['--nproc-per-node', '2', '--node-rank', '-1'], '--node-rank: expected an integer >= 0, got -1'],
      [['--nproc-per-node', '2', '--master-port', '70000'], '--master-port: expected a port 1..65535, got 70000'],
      [['--nproc-per-node', '2', '--master-addr', ''], '--master-addr: expected an address'],
      [['--nproc-per-node', '2', '--nproc-per-node', '3'], '--nproc-per-node is given twice'],
    ];
    for (const [argv, message] of bad) expect(() => splitLaunchArgs('train', [...argv, '--config', 'r.yaml']), argv.join(' ')).toThrow(message);
    expect(splitLaunchArgs('train', ['--config', 'r.yaml', '--nproc-per-node', '2', '--epochs', '1'])).toEqual({
      options: { nprocPerNode: 2, nnodes: undefined, nodeRank: undefined, masterAddr: undefined, masterPort: undefined },
      rest: ['--config', 'r.yaml', '--epochs', '1'],
    });
  });

  it('finetorch train: a usage error exits 2; children run finetorch train without the launcher flags', () => {
    const usage = spawnSync(process.execPath, [CLI, 'train', '--nproc-per-node', '2', '--nnodes', '2', '--config', 'r.yaml', '--pretty'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('finetorch train: --master-port is required with --nnodes > 1');
    // each child fails on the missing recipe (exit 2); the launcher names the first
    const run = spawnSync(process.execPath, [CLI, 'train', '--nproc-per-node', '2', '--config', join(dir, 'missing.yaml'), '--pretty'], {
      encoding: 'utf8',
      timeout: 15000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/\[rank [01]\] finetorch train: .*missing\.yaml/);
    expect(run.stderr).toMatch(/finetorch train: rank [01] exited with code 2; stopped the other ranks/);
    expect(run.stderr).not.toContain('--nproc-per-node');
  });
});
