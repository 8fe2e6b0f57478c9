// The dashboard's web server (node:http, no dependencies): the page at /, its
// script and style, a small JSON API over the runs, and Server-Sent Events
// that push what the runs' events.jsonl files gain while they train.
//
//   GET /                 the page
//   GET /api/runs         [RunInfo] (the comparison table's rows)
//   GET /api/runs/<id>    RunData: steps, epochs, evaluations and the summary
//   GET /api/stream       text/event-stream: 'run' events carrying a RunDelta
//                         (reset: the whole run; else records to append)
//
// Bound to localhost by default. Any other address needs a token (given, or
// generated: token: true) or an explicit noToken: true; with a token every
// request must carry it (?token=..., or the cookie the page gets with it).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PAGE_HTML } from './page.js';
import { PAGE_SCRIPT } from './script.js';
import { PAGE_STYLE } from './style.js';
import { findRuns, RunStore, type RunDelta } from './runs.js';

export interface DashboardOptions {
  /** A folder of run folders, or run folders (each with events.jsonl / run.json). */
  runs: string | string[];
  /** Address to listen on (default 127.0.0.1). Anything but localhost needs `token` or `noToken`. */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** A secret every request must carry; true: generate one. Optional on localhost. */
  token?: string | boolean;
  /** Serve a non-localhost address without a token (anyone who can reach it sees the runs). */
  noToken?: boolean;
  /** How often the run files are checked for new events while a page is open, milliseconds (default 250). */
  pollMs?: number;
}

export interface Dashboard {
  /** The page's address (with ?token=... when there is a token). */
  url: string;
  host: string;
  port: number;
  token: string | null;
  /** Stops serving (open event streams are ended). */
  close(): Promise<void>;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);
/** Whether an address only accepts connections from this machine. */
export const isLocalHost = (host: string): boolean => LOCAL_HOSTS.has(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);

export class DashboardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DashboardError';
  }
}

const cookieName = (port: number) => `finetorch_dashboard_${port}`;

function tokenOf(req: IncomingMessage, url: URL, port: number): string | null {
  const q = url.searchParams.get('token');
  if (q !== null) return q;
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === cookieName(port)) return decodeURIComponent(v.join('='));
  }
  return null;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The host part of a Host header ('[::1]:8080' -> '[::1]', 'a:1' -> 'a'). */
const hostName = (header: string) => (header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.split(':')[0]);

/** Serves the dashboard; resolves when it listens. */
export async function serveDashboard(options: DashboardOptions): Promise<Dashboard> {
  const paths = Array.isArray(options.runs) ? options.runs : [options.runs];
  if (!paths.length) throw new DashboardError('serveDashboard: runs: give a folder of run folders, or run folders');
  const host = options.host ?? '127.0.0.1';
  const local = isLocalHost(host);
  if (options.token !== undefined && options.token !== true && options.token !== false && (typeof options.token !== 'string' || options.token.length < 8))
    throw new DashboardError('serveDashboard: token: expected a secret of at least 8 characters (or true to generate one)');
  if (typeof options.token === 'string' && options.noToken) throw new DashboardError('serveDashboard: give token or noToken, not both');
  if (!local && !options.token && !options.noToken)
    throw new DashboardError(
      `serveDashboard: host ${host} is reachable from other machines; give a token (token: true generates one; CLI --token) or noToken: true to serve it to anyone who can reach it (CLI --no-token)`,
    );
  const token = options.token === true ? randomBytes(16).toString('hex') : typeof options.token === 'string' ? options.token : null;
  // a path that does not exist is an error now (while serving, one that goes away is skipped)
  try {
    findRuns(paths);
  } catch (err) {
    throw new DashboardError((err as Error).message);
  }
  const store = new RunStore(paths);
  store.refresh();

  const clients = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | null = null;
  let port = 0;

  const send = (res: ServerResponse, d: RunDelta) => res.write(`event: run\ndata: ${JSON.stringify(d, jsonNumbers)}\n\n`);
  /** Reads what the files gained and pushes it to every open page. */
  const tick = () => {
    const deltas = store.refresh();
    for (const res of clients) for (const d of deltas) send(res, d);
  };
  const startPolling = () => {
    if (!timer) timer = setInterval(tick, options.pollMs ?? 250);
  };
  const stopPolling = () => {
    if (timer && !clients.size) {
      clearInterval(timer);
      timer = null;
    }
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`dashboard: ${(err as Error).message}\n`);
    }
  });

  /** Answers a request (true: answered, or the event stream is open). */
  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    // without a token, only pages served from localhost may ask (a web page elsewhere cannot reach it by DNS rebinding)
    if (!token && local && !isLocalHost(hostName(req.headers.host ?? '')))
      return text(res, 403, `dashboard: unexpected Host header ${req.headers.host ?? ''}\n`);
    if (token) {
      const given = tokenOf(req, url, port);
      if (given === null || !sameSecret(given, token))
        return text(
          res,
          403,
          given === null ? 'dashboard: this dashboard needs its token: open the URL it printed (…/?token=…)\n' : 'dashboard: wrong token\n',
        );
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'dashboard: only GET\n');
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    // the page keeps the token in a cookie (per port), so its own requests need not carry it in the URL
    if (token && url.searchParams.has('token')) headers['set-cookie'] = `${cookieName(port)}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
    const path = url.pathname;
    if (path === '/' || path === '/index.html')
      return body(res, 200, PAGE_HTML, {
        ...headers,
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': "default-src 'self'; img-src 'self' data:",
      });
    if (path === '/dashboard.js') return body(res, 200, PAGE_SCRIPT, { ...headers, 'content-type': 'text/javascript; charset=utf-8' });
    if (path === '/dashboard.css') return body(res, 200, PAGE_STYLE, { ...headers, 'content-type': 'text/css; charset=utf-8' });
    if (path === '/api/runs') {
      tick();
      return json(
        res,
        store.runs().map((r) => r.info()),
        headers,
      );
    }
    if (path.startsWith('/api/runs/')) {
      tick();
      const id = decodeURIComponent(path.slice('/api/runs/'.length));
      const run = store.get(id);
      if (!run) return text(res, 404, `dashboard: no run ${JSON.stringify(id)}\n`);
      return json(res, { ...run.snapshot, info: run.info() }, headers);
    }
    if (path === '/api/stream') {
      tick();
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      // everything so far, then what follows
      for (const r of store.runs()) send(res, { run: r.id, reset: true, info: r.info(), ...pick(r.snapshot) });
      res.write('event: ready\ndata: {}\n\n');
      clients.add(res);
      startPolling();
      req.on('close', () => {
        clients.delete(res);
        stopPolling();
      });
      return true;
    }
    if (path === '/favicon.ico') return body(res, 204, '', headers);
    return text(res, 404, `dashboard: no page ${path}\n`);
  }

  await new Promise<void>((done, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        err.code === 'EADDRINUSE'
          ? new DashboardError(`dashboard: port ${options.port} on ${host} is in use (give another --port, or 0 for any free one)`)
          : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
            ? new DashboardError(`dashboard: cannot listen on ${host}: no such address here`)
            : err.code === 'EACCES'
              ? new DashboardError(`dashboard: no permission to listen on port ${options.port} (ports below 1024 need root)`)
              : err,
      ),
    );
    server.listen(options.port ?? 0, host, () => done());
  });
  port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  const url = `http://${shown}:${port}/${token ? `?token=${token}` : ''}`;
  return {
    url,
    host,
    port,
    token,
    close: () =>
      new Promise<void>((done) => {
        if (timer) clearInterval(timer);
        timer = null;
        for (const res of clients) res.end();
        clients.clear();
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

const pick = (d: { steps: unknown; epochs: unknown; evals: unknown }) =>
  ({ steps: d.steps, epochs: d.epochs, evals: d.evals }) as Omit<RunDelta, 'run' | 'reset' | 'info'>;

// NaN/Infinity (a diverged loss) as strings, as events.jsonl has them; the page turns them back
const jsonNumbers = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);

function body(res: ServerResponse, status: number, content: string, headers: Record<string, string>): true {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(content)) });
  res.end(content);
  return true;
}
const text = (res: ServerResponse, status: number, message: string) => body(res, status, message, { 'content-type': 'text/plain; charset=utf-8' });
const json = (res: ServerResponse, value: unknown, headers: Record<string, string>) =>
  body(res, 200, JSON.stringify(value, jsonNumbers), { ...headers, 'content-type': 'application/json; charset=utf-8' });
