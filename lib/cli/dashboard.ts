// `finetorch dashboard <runs...>`: serves the live dashboard (lib/dashboard)
// over run folders, or folders of run folders, until Ctrl-C; runs that start
// later in those folders appear on their own. Localhost by default; another
// --host gets a generated token in the printed URL unless --token or
// --no-token says otherwise.
import { parseArgs, usageLines, type FlagSpec } from './args.js';
import { usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';
import { DashboardError, isLocalHost, serveDashboard, type Dashboard, type DashboardOptions } from '../dashboard/index.js';

/** The port tried first when none is given (TensorBoard's 6006 is left to TensorBoard); the next ones if it is taken. */
export const DEFAULT_PORT = 6070;

const FLAGS: Record<string, FlagSpec> = {
  host: {
    type: 'string',
    arg: 'address',
    help: 'address to listen on (default 127.0.0.1; another address needs a token, generated unless --token or --no-token)',
  },
  port: { type: 'int', arg: 'n', help: `port (default ${DEFAULT_PORT}, or the next free one; 0: any free port)` },
  token: { type: 'string', arg: 'secret', help: 'a secret every request must carry (in the printed URL); default: none on localhost, generated elsewhere' },
  'no-token': { type: 'boolean', help: 'serve a non-localhost address without a token (anyone who can reach it sees the runs)' },
  help: { type: 'boolean', help: 'this help' },
};

export const DASHBOARD_USAGE = `usage: finetorch dashboard <runs...> [options]

Serves a live web page with the runs' loss, learning-rate and metric curves,
confusion matrices, per-class metrics and a comparison table. <runs>: run
folders (train's out), or folders of run folders (runs/). Ctrl-C stops it.

${usageLines(FLAGS)}
`;

/** Serving options from the flags: a token on non-local addresses unless --no-token; the host and port checked. */
export function dashboardOptions(runs: string[], flags: { host?: unknown; port?: unknown; token?: unknown; 'no-token'?: unknown }): DashboardOptions {
  const host = (flags.host as string | undefined) ?? '127.0.0.1';
  if (!host.trim()) throw new UsageError('--host: expected an address (e.g. 127.0.0.1 or 0.0.0.0)');
  const port = flags.port as number | undefined;
  if (port !== undefined && (port < 0 || port > 65535)) throw new UsageError(`--port: expected 0..65535, got ${port}`);
  if (flags.token !== undefined && flags['no-token']) throw new UsageError('give --token or --no-token, not both');
  const token = flags.token as string | undefined;
  if (token !== undefined && token.length < 8) throw new UsageError('--token: expected a secret of at least 8 characters');
  return {
    runs,
    host,
    port,
    token: token ?? (flags['no-token'] ? undefined : isLocalHost(host) ? undefined : true),
    noToken: !!flags['no-token'],
  };
}

/** serveDashboard, trying DEFAULT_PORT and the next nine ports when no port was given. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  if (options.port !== undefined) return serveDashboard(options);
  for (let port = DEFAULT_PORT; ; port++) {
    try {
      return await serveDashboard({ ...options, port });
    } catch (err) {
      const busy = err instanceof DashboardError && /is in use/.test(err.message);
      if (!busy) throw err;
      if (port >= DEFAULT_PORT + 9) return serveDashboard({ ...options, port: 0 });
    }
  }
}

export async function dashboardCommand(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  let options: DashboardOptions;
  try {
    args = parseArgs('dashboard', argv, FLAGS);
    if (args.flags.help) {
      process.stdout.write(DASHBOARD_USAGE);
      return EXIT.ok;
    }
    if (!args.positionals.length) throw new UsageError('give the run folders (or a folder of run folders, e.g. runs/)', 'dashboard');
    options = dashboardOptions(args.positionals, args.flags);
  } catch (err) {
    return usageFailure('dashboard', argv, err, DASHBOARD_USAGE);
  }
  let server: Dashboard;
  try {
    server = await startDashboard(options);
  } catch (err) {
    process.stderr.write(`finetorch dashboard: ${(err as Error).message.replace(/^(serveDashboard|dashboard): /, '')}\n`);
    return err instanceof DashboardError ? EXIT.usage : EXIT.runtime;
  }
  const json = !process.stdout.isTTY;
  process.stdout.write(
    json
      ? JSON.stringify({ type: 'dashboard', time: new Date().toISOString(), url: server.url, host: server.host, port: server.port }) + '\n'
      : `dashboard: ${server.url}\n${isLocalHost(server.host) ? '' : `(from other machines: this machine's name or address in place of localhost)\n`}(Ctrl-C to stop)\n`,
  );
  // serve until Ctrl-C / SIGTERM
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  return EXIT.ok;
}
