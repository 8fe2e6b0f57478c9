#!/usr/bin/env node
// npm install hook: use a prebuilt binary when one loads with the libtorch on
// this machine, otherwise build from source (cmake-js). Skips the build when
// the existing source build is newer than every native source (idempotent).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.FINETORCH_SKIP_BUILD) process.exit(0);

// Test-load a binary in a child process, so a bad one cannot take npm down with it.
function loads(file) {
  try {
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).buildInfo()`], { stdio: 'ignore', timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

const prebuildDir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (existsSync(prebuildDir)) {
  for (const flavor of readdirSync(prebuildDir).sort()) {
    const file = join(prebuildDir, flavor, 'finetorch.node');
    if (existsSync(file) && loads(file)) {
      console.log(`finetorch: using prebuilt binary ${flavor}`);
      process.exit(0);
    }
  }
}

const built = join(root, 'build', 'Release', 'finetorch.node');
if (existsSync(built)) {
  const newest = Math.max(...['CMakeLists.txt', ...readdirSync(join(root, 'native')).map((f) => join('native', f))]
    .map((f) => statSync(join(root, f)).mtimeMs));
  if (statSync(built).mtimeMs > newest && loads(built)) {
    console.log('finetorch: native addon is up to date');
    process.exit(0);
  }
}
execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit' });
