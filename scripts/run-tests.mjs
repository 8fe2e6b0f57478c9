#!/usr/bin/env node
// Runs the lint check and the vitest suite and prints the closing line CI
// reads: "N passed, N failed" (vitest's own summary has another form). The
// lint check counts as one test. scripts/test-torch2.mjs runs its file list
// through runVitest too.
//   node scripts/run-tests.mjs [vitest file filters...]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot as root } from './libtorch.mjs';

/**
 * Runs vitest on `files` (all test files when empty) with a JSON report named
 * `report`, and counts per test: a suite that died counts as a failure, and a
 * test that did not run (a dead worker leaves its tests pending) is one too.
 */
export function runVitest({ files = [], env = process.env, report = 'vitest.json' } = {}) {
  mkdirSync(join(root, 'test-results'), { recursive: true });
  const out = join(root, 'test-results', report);
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const run = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    for (const s of r.testResults ?? []) {
      const results = s.assertionResults ?? [];
      if (s.status === 'failed' && results.length === 0) failed++;
      for (const a of results) {
        if (a.status === 'passed') passed++;
        else if (a.status === 'failed') failed++;
        else skipped++;
      }
    }
    failed += r.numRuntimeErrorTestSuites ?? 0;
  } catch {
    failed = Math.max(1, failed);
  }
  if (skipped > 0) console.log(`${skipped} tests did not run (no test in this suite is skipped on purpose): counted as failures`);
  return { passed, failed: failed + skipped, skipped, ok: run.status === 0 && failed + skipped === 0 };
}

function main(filters) {
  // lint: formatting and rules for TypeScript/JavaScript (Biome) and native/ (clang-format); one counted test
  const lint = spawnSync(process.execPath, [join(root, 'scripts', 'lint.mjs')], { cwd: root, stdio: 'inherit' });
  const lintOk = lint.status === 0;
  console.log(`lint: ${lintOk ? 'ok' : 'FAILED (npm run lint:fix formats; the rest needs a hand)'}`);
  const r = runVitest({ files: filters });
  const passed = r.passed + (lintOk ? 1 : 0);
  const failed = r.failed + (lintOk ? 0 : 1);
  console.log(`${passed} passed, ${failed} failed, ${r.skipped} skipped`);
  return r.ok && lintOk ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exitCode = main(process.argv.slice(2));
