#!/usr/bin/env node
// A screenshot of the dashboard over some runs (docs/dashboard.png), in the
// headless Chromium of scripts/get-chromium.mjs. Needs dist/ (npx tsc).
//
//   node scripts/dashboard-screenshot.mjs <runs> <out.png> [--x step|epoch|time] [--matrix-run <id>] [--width 1280]
//
// docs/dashboard.png: two recipes on Fashion-MNIST (10 classes, 150 images
// each, val 0.2, 30 test images per class; resnet18 width 16, inChannels 1,
// smallStem; 5 epochs of batch 32, seed 1), one with a single AdamW LR of 3e-3
// and cosine schedule (runs/adamw-3e-3), one with discriminative LRs
// bottomLr 3e-4 / topLr 3e-3 and a linear schedule (runs/discriminative-lr),
// then: node scripts/dashboard-screenshot.mjs runs docs/dashboard.png --matrix-run discriminative-lr
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { getChromium } from './get-chromium.mjs';
import { dashboard } from '../dist/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { x: { type: 'string', default: 'step' }, 'matrix-run': { type: 'string' }, width: { type: 'string', default: '1280' } },
});
if (positionals.length !== 2) {
  console.error('usage: node scripts/dashboard-screenshot.mjs <runs> <out.png> [--x step|epoch|time] [--matrix-run <id>] [--width 1280]');
  process.exit(2);
}
const [runs, out] = positionals;
const c = getChromium();
const server = await dashboard.serveDashboard({ runs });
const browser = await chromium.launch({ executablePath: c.executablePath, env: { ...process.env, ...c.env }, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: Number(values.width), height: 900 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => window.finetorchDashboard?.ready && window.finetorchDashboard.rendered === window.finetorchDashboard.updates);
  if (values.x !== 'step') await page.check(`input[name=x][value=${values.x}]`);
  if (values['matrix-run']) await page.selectOption('#matrix-run', values['matrix-run']);
  await page.waitForTimeout(200);
  // a 128-colour palette keeps the PNG small (flat colours, anti-aliased text)
  const png = await page.screenshot({ fullPage: true });
  const info = await sharp(png).png({ palette: true, colours: 128, compressionLevel: 9, effort: 10 }).toFile(out);
  console.log(`${out}: ${info.width}x${info.height}, ${(info.size / 1024).toFixed(0)} KB`);
} finally {
  await browser.close();
  await server.close();
}
