#!/usr/bin/env node
// Runs the vitest suite and prints the closing line CI reads:
// "N passed, N failed" (vitest's own summary has another form).
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'test-results'), { recursive: true });
const report = join(root, 'test-results', 'vitest.json');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
let passed = 0,
  failed = 0,
  skipped = 0;
try {
  // count from the individual results: a worker that dies (out of memory, say)
  // leaves its remaining tests "pending", which must not pass silently
  const r = JSON.parse(readFileSync(report, 'utf8'));
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
failed += skipped;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
