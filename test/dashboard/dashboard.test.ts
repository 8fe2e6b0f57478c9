// The live dashboard end to end, in a real headless browser: Debian's
// chromium-headless-shell (unpacked into test/.cache by
// scripts/get-chromium.mjs, nothing installed) driven by playwright-core.
// `finetorch train --dashboard` trains a narrow ResNet on a few hundred
// Fashion-MNIST images while the page is open; a second page, served from the
// test's own process, must hold exactly the steps written so far at two
// points where the trainer is paused (SIGSTOP), so the check does not race
// the machine's load; afterwards the confusion matrix must be the one in
// events.jsonl and the per-class table must agree with scikit-learn's
// precision_recall_fscore_support on the same predictions; a screenshot must
// decode, have the viewport's size and not be blank. Tokens: a non-localhost
// address without one is refused; a wrong or missing token gets 403.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, appendFileSync, renameSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { dashboard } from 'finetorch';
import { CLI, cliLive, type Event } from '../cli/cli-helpers';
// @ts-expect-error: a plain .mjs script without types
import { getChromium } from '../../scripts/get-chromium.mjs';

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

let dir = '';
let browser: Browser;
const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Bag'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-dashboard-'));
  const c = getChromium() as { executablePath: string; env: Record<string, string> };
  browser = await chromium.launch({ executablePath: c.executablePath, env: { ...process.env, ...c.env }, args: ['--no-sandbox'] });
}, 180000);

afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  status: string | null;
  steps: number;
  drawn: number;
}

/** What the page shows of a run: its status, the steps it holds, the points of its train-loss line. */
const sample = (page: Page, run: string): Promise<Sample> =>
  page.evaluate((id) => {
    const s = (window as unknown as { finetorchDashboard: { runs: Record<string, { info: { status: string }; steps: unknown[] }> } }).finetorchDashboard;
    const r = s.runs[id];
    const path = document.querySelector(`.chart[data-chart="loss"] path[data-run="${id}"][data-series="train"]`);
    return { status: r ? r.info.status : null, steps: r ? r.steps.length : 0, drawn: path ? Number(path.getAttribute('data-points')) : 0 };
  }, run);

/** scikit-learn's per-class precision, recall, F1 and support for the predictions a confusion matrix counts. */
function sklearnReport(matrix: number[][]): number[][] {
  const py = `
import json, sys
from sklearn.metrics import precision_recall_fscore_support
m = json.load(sys.stdin)
t = [i for i, row in enumerate(m) for j, n in enumerate(row) for _ in range(n)]
p = [j for i, row in enumerate(m) for j, n in enumerate(row) for _ in range(n)]
r = precision_recall_fscore_support(t, p, labels=list(range(len(m))), zero_division=0)
print(json.dumps([[float(r[0][k]), float(r[1][k]), float(r[2][k]), int(r[3][k])] for k in range(len(m))]))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify(matrix), encoding: 'utf8', timeout: 60000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('finetorch train --dashboard', () => {
  it('the page follows a run live: curves gain points while it trains; then the confusion matrix, per-class table, comparison and a screenshot', async () => {
    const recipe = join(dir, 'live.json');
    writeFileSync(
      recipe,
      JSON.stringify({
        model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
        optimizer: { lr: 3e-3 },
        schedule: { kind: 'linear', warmupSteps: 2 },
        epochs: 3,
        batchSize: 16,
        seed: 2,
        out: 'runs/live',
        data: { kind: 'fashionMnist', classes: CLASSES, perClass: 140, val: 0.25, testPerClass: 10 },
      }),
    );
    // A second server, in this process, on the same runs: it keeps serving while the trainer (and its own
    // dashboard) is paused with SIGSTOP, so the page can be checked at two known points of the run.
    mkdirSync(join(dir, 'runs'), { recursive: true });
    const watcher = await dashboard.serveDashboard({ runs: join(dir, 'runs') });
    const watch = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    watch.on('pageerror', (e) => errors.push(`watching page: ${e.message}`));
    let gotUrl: (url: string) => void = () => {};
    const url = new Promise<string>((done) => (gotUrl = done));
    let trainer: ChildProcess | null = null;
    let ended = false;
    const eventsPath = join(dir, 'runs', 'live', 'events.jsonl');
    /** Step events in the complete lines of events.jsonl. */
    const stepsWritten = (): number => {
      let text = '';
      try {
        text = readFileSync(eventsPath, 'utf8');
      } catch {
        return 0;
      }
      return text
        .split('\n')
        .slice(0, -1)
        .filter((l) => l.includes('"type":"step"')).length;
    };
    const run = cliLive(['train', '--config', recipe, '--dashboard', '--dashboard-port', '0'], (e: Event, child) => {
      trainer = child;
      if (e.type === 'message' && typeof e.text === 'string' && e.text.startsWith('dashboard: ')) gotUrl(e.text.slice('dashboard: '.length));
      if (e.type === 'end') ended = true;
    });
    const address = await url;
    expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await page.goto(address);
    await watch.goto(watcher.url);
    // live: pause the trainer after some steps, wait until the page holds exactly the steps written so far,
    // resume, and again later; the page must follow (a race-free check, whatever the machine's load)
    const samples: Sample[] = [];
    try {
      for (const atLeast of [3, 20]) {
        while (stepsWritten() < atLeast && !ended) await sleep(20);
        trainer!.kill('SIGSTOP');
        await sleep(200); // a write in flight lands
        const written = stepsWritten();
        let shown = await sample(watch, 'live');
        for (let tries = 0; tries < 400 && !(shown.steps === written && shown.drawn === written); tries++) {
          await sleep(50);
          shown = await sample(watch, 'live');
        }
        samples.push(shown);
        trainer!.kill('SIGCONT');
      }
    } finally {
      trainer!.kill('SIGCONT');
    }
    while (!ended) await sleep(50);
    // the end reaches the page while the command still serves (5 s after training when not on a terminal)
    await page.waitForFunction(() => {
      const s = (window as unknown as { finetorchDashboard: { runs: Record<string, { info: { status: string; test: unknown } }> } }).finetorchDashboard;
      return s.runs.live?.info.status === 'ok' && s.runs.live.info.test !== null;
    });
    await page.waitForFunction(() => {
      const s = (window as unknown as { finetorchDashboard: { updates: number; rendered: number } }).finetorchDashboard;
      return s.rendered === s.updates;
    });
    const final = await sample(page, 'live');
    trainer!.kill('SIGTERM'); // stops the lingering dashboard; training is over
    const result = await run;
    expect(result.status, result.stderr).toBe(0);

    const events = readFileSync(join(dir, 'runs', 'live', 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Event);
    const steps = events.filter((e) => e.type === 'step').length;
    const epochs = events.filter((e) => e.type === 'epoch') as Array<Event & { val: { confusionMatrix: number[][] } }>;
    const start = events.find((e) => e.type === 'start') as Event & { batchesPerEpoch: number };
    expect(steps).toBe(3 * start.batchesPerEpoch);
    expect(final).toEqual({ status: 'ok', steps, drawn: steps });
    // live: while the run was training the page held part of the steps, and more later
    expect(samples, JSON.stringify(samples)).toHaveLength(2);
    for (const s of samples) expect(s.status).toBe('running');
    expect(samples[0].steps).toBeGreaterThanOrEqual(3);
    expect(samples[1].steps).toBeGreaterThanOrEqual(20);
    expect(samples[1].steps).toBeLessThan(steps);
    for (const s of samples) expect(s.drawn).toBe(s.steps);
    await watch.close();
    await watcher.close();
    // every chart is drawn: val metrics one point per epoch
    const points = await page.$$eval('.chart', (cards) =>
      Object.fromEntries(cards.map((c) => [c.getAttribute('data-chart'), Number(c.getAttribute('data-points'))])),
    );
    expect(points['val-accuracy']).toBe(3);
    expect(points.lr).toBe(steps);

    // the confusion matrix of the last epoch (the default), as events.jsonl has it
    const matrixOf = () =>
      page.$$eval('#matrix table.matrix tr', (rows) => rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((td) => Number(td.textContent))));
    const last = epochs[2].val.confusionMatrix;
    expect(await matrixOf()).toEqual(last);
    expect(await page.$$eval('#matrix table.matrix tr:first-child th', (th) => th.slice(1).map((h) => h.textContent))).toEqual(CLASSES);
    // per-class precision / recall / F1 / support: scikit-learn on the same predictions
    const table = await page.$$eval('#per-class tr[data-class]', (rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].slice(1).map((td) => Number(td.textContent))),
    );
    const reference = sklearnReport(last);
    expect(table).toHaveLength(CLASSES.length);
    table.forEach((row, k) => {
      for (let j = 0; j < 3; j++) expect(row[j]).toBeCloseTo(reference[k][j], 4); // shown with 4 decimals
      expect(row[3]).toBe(reference[k][3]);
    });
    // another epoch: the first one's matrix
    await page.selectOption('#matrix-epoch', 'epoch:0');
    expect(await matrixOf()).toEqual(epochs[0].val.confusionMatrix);
    expect(await page.textContent('#matrix-title')).toContain('epoch 1 (val)');
    // the comparison table: the run, done, 3 of 3 epochs, its test accuracy
    const end = events.at(-1) as Event & { test: { accuracy: number } };
    const row = await page.$$eval('#comparison tr[data-run="live"] td', (tds) => tds.map((td) => td.textContent));
    expect(row[1]).toBe('ok');
    expect(row[4]).toBe('3 / 3');
    expect(Number(row[8])).toBeCloseTo(end.test.accuracy, 4);

    // the screenshot: a PNG of the viewport's size, not blank
    const png = await page.screenshot();
    const image = sharp(png);
    const meta = await image.metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 1200, 900]);
    const stats = await image.stats();
    for (const c of stats.channels.slice(0, 3)) expect(c.stdev).toBeGreaterThan(10);
    expect(errors).toEqual([]);
    await page.close();
  }, 120000);
});

/** A GET with full control of the headers; resolves with the status and body. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => done({ status: res.statusCode!, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('dashboard access', () => {
  it('refuses a non-localhost address without a token; with one, requests without it or with a wrong one get 403', async () => {
    const runs = join(dir, 'runs');
    await expect(dashboard.serveDashboard({ runs, host: '0.0.0.0' })).rejects.toThrow(/0\.0\.0\.0 is reachable from other machines; give a token/);
    await expect(dashboard.serveDashboard({ runs, token: 'short' })).rejects.toThrow(/at least 8 characters/);
    await expect(dashboard.serveDashboard({ runs: join(dir, 'no-such-folder') })).rejects.toThrow(/no-such-folder does not exist/);
    const d = await dashboard.serveDashboard({ runs, host: '0.0.0.0', token: true });
    try {
      expect(d.token).toMatch(/^[0-9a-f]{32}$/);
      expect(d.url).toBe(`http://localhost:${d.port}/?token=${d.token}`);
      const base = `http://127.0.0.1:${d.port}`;
      expect((await get(`${base}/api/runs`)).status).toBe(403);
      expect((await get(`${base}/`)).body).toMatch(/needs its token/);
      expect((await get(`${base}/api/runs?token=${'0'.repeat(32)}`)).status).toBe(403);
      expect((await get(`${base}/api/runs`, { authorization: 'Bearer wrong' })).status).toBe(403);
      const ok = await get(`${base}/api/runs?token=${d.token}`);
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body).map((r: { id: string }) => r.id)).toContain('live');
      // the page with its token: the cookie it gets lets its script and event stream in
      const page = await browser.newPage();
      await page.goto(`${base}/?token=${d.token}`);
      await page.waitForFunction(() => (window as unknown as { finetorchDashboard: { ready: boolean } }).finetorchDashboard?.ready === true);
      expect(await page.textContent('#comparison tr[data-run="live"] td:nth-child(2)')).toBe('ok');
      await page.close();
    } finally {
      await d.close();
    }
    // without a token, localhost only answers requests addressed to localhost (no DNS rebinding)
    const local = await dashboard.serveDashboard({ runs });
    try {
      expect((await get(`http://127.0.0.1:${local.port}/api/runs`)).status).toBe(200);
      expect((await get(`http://127.0.0.1:${local.port}/api/runs`, { host: `attacker.example:${local.port}` })).status).toBe(403);
    } finally {
      await local.close();
    }
  }, 60000);

  it('finetorch dashboard: usage errors, and serving a folder of runs until SIGTERM', async () => {
    const bad = spawnSync(process.execPath, [CLI, 'dashboard', join(dir, 'runs'), '--host', '0.0.0.0', '--token', 'a-long-secret', '--no-token'], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/give --token or --no-token, not both/);
    const missing = spawnSync(process.execPath, [CLI, 'dashboard', join(dir, 'nothing-here')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nothing-here does not exist/);
    const child = spawn(process.execPath, [CLI, 'dashboard', join(dir, 'runs'), '--port', '0', '--host', '0.0.0.0']);
    const line = await new Promise<string>((done) => child.stdout.setEncoding('utf8').once('data', (d: string) => done(d)));
    const started = JSON.parse(line) as { type: string; url: string; port: number };
    expect(started.type).toBe('dashboard');
    expect(started.url).toMatch(/\?token=[0-9a-f]{32}$/); // not localhost: a token was generated
    expect((await get(`http://127.0.0.1:${started.port}/api/runs`)).status).toBe(403);
    const runs = await get(`http://127.0.0.1:${started.port}/api/runs/live?token=${started.url.split('token=')[1]}`);
    expect(JSON.parse(runs.body).epochs).toHaveLength(3);
    child.kill('SIGTERM');
    expect(await new Promise((done) => child.on('close', done))).toBe(0);
  }, 30000);
});

describe('dashboard run reader', () => {
  it('reads events.jsonl as it grows (a line in two writes), drops steps a resumed run repeats, and starts over on a replaced file', () => {
    const runDir = join(dir, 'reader', 'r1');
    mkdirSync(runDir, { recursive: true });
    const file = join(runDir, 'events.jsonl');
    const line = (e: object) => JSON.stringify({ time: '2026-01-01T00:00:00.000Z', ...e }) + '\n';
    const step = (s: number, epoch: number) =>
      line({ type: 'step', epoch, step: s, batch: s % 2, batches: 2, loss: 1 / (s + 1), lrs: [0.1, 0.01], samplesPerSecond: 10 });
    writeFileSync(
      file,
      line({
        type: 'start',
        command: 'train',
        classes: ['a', 'b'],
        recipe: { epochs: 2 },
        model: { arch: 'mlp', parameters: 10, trainable: 10 },
        groups: [{ block: 'body' }, { block: 'head' }],
      }) + step(0, 0),
    );
    const store = new dashboard.RunStore([join(dir, 'reader')]);
    let [d] = store.refresh();
    expect(d).toMatchObject({ run: 'r1', reset: true, info: { classes: ['a', 'b'], groups: ['body', 'head'], epochsPlanned: 2, status: 'running' } });
    expect(d.steps.map((s) => s.step)).toEqual([0]);
    // half a line: nothing new until the rest arrives
    const next = step(1, 0);
    appendFileSync(file, next.slice(0, 20));
    expect(store.refresh().flatMap((x) => x.steps)).toEqual([]);
    appendFileSync(
      file,
      next.slice(20) +
        line({
          type: 'epoch',
          epoch: 0,
          trainLoss: 0.7,
          val: {
            loss: 'NaN',
            accuracy: 0.5,
            f1Macro: 0.4,
            rocAuc: null,
            confusionMatrix: [
              [1, 1],
              [0, 2],
            ],
            samples: 4,
          },
          seconds: 1,
          best: true,
        }) +
        step(2, 1),
    );
    [d] = store.refresh();
    expect([d.reset, d.steps.map((s) => s.step), d.epochs.map((e) => e.steps)]).toEqual([false, [1, 2], [2]]);
    expect(d.epochs[0].val!.loss).toBeNaN();
    // a resumed run goes back to step 2 (epoch 1): the logged step 2 is replaced, not doubled
    appendFileSync(file, line({ type: 'resumed', epoch: 1, batch: 0, step: 2, path: 'last' }) + step(2, 1) + step(3, 1));
    [d] = store.refresh();
    expect([d.reset, d.steps.map((s) => s.step)]).toEqual([true, [0, 1, 2, 3]]);
    // train --force: a new file in its place (same size or not) is read from its start
    writeFileSync(join(runDir, 'new.jsonl'), line({ type: 'start', command: 'train', classes: ['x', 'y'], recipe: { epochs: 1 } }) + step(0, 0));
    renameSync(join(runDir, 'new.jsonl'), file);
    [d] = store.refresh();
    expect([d.reset, d.info.classes, d.steps.length]).toEqual([true, ['x', 'y'], 1]);
  });
});
