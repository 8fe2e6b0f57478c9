// Loading the addon: the package imports by name from an installed location,
// reports where its binary and libtorch came from, and when no binary loads
// it fails with every attempt listed and how to fix it.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadReport } from 'finetorch';

const root = resolve(__dirname, '..', '..');

describe('loader', () => {
  it('reports the binary and the libtorch it was built against', () => {
    expect(loadReport.path).toMatch(/finetorch\.node$/);
    expect(loadReport.libtorch.version).toMatch(/^\d+\.\d+\.\d+$/);
    if (loadReport.origin === 'source build') expect(loadReport.libtorch.source).toBeTruthy();
  });

  it('imports by package name from a project that installed it', () => {
    const project = mkdtempSync(join(tmpdir(), 'finetorch-consumer-'));
    try {
      mkdirSync(join(project, 'node_modules'));
      symlinkSync(root, join(project, 'node_modules', 'finetorch'));
      writeFileSync(join(project, 'main.mjs'), `
        import { torch, nn, optim, cuda } from 'finetorch';
        const m = new nn.Linear(3, 2);
        const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
        console.log(JSON.stringify({ shape: m.forward(torch.ones([4, 3])).shape, groups: opt.paramGroups.length, cuda: cuda.isAvailable() }));
      `);
      const r = spawnSync(process.execPath, ['main.mjs'], { cwd: project, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ shape: [4, 2], groups: 1, cuda: false });
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('a bad FINETORCH_BINARY is recorded and the next candidate is used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'finetorch-bad-'));
    try {
      const bogus = join(dir, 'bogus.node');
      writeFileSync(bogus, 'not a shared object');
      const r = spawnSync(process.execPath, ['-e', `import('finetorch').then(f => console.log(JSON.stringify(f.loadReport)))`],
        { cwd: root, encoding: 'utf8', env: { ...process.env, FINETORCH_BINARY: bogus } });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.attempts[0]).toContain(`FINETORCH_BINARY: ${bogus} failed to load`);
      expect(report.origin).not.toBe('FINETORCH_BINARY');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with no loadable binary, one error lists every attempt and the fixes', () => {
    const copy = mkdtempSync(join(tmpdir(), 'finetorch-nobinary-'));
    try {
      cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
      cpSync(join(root, 'package.json'), join(copy, 'package.json'));
      symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
      const r = spawnSync(process.execPath, ['-e', `import('./dist/index.js')`], { cwd: copy, encoding: 'utf8', env: { ...process.env, FINETORCH_BINARY: '' } });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('finetorch: could not load the native addon. Tried:');
      expect(r.stderr).toMatch(/source build: .*build\/Release\/finetorch\.node does not exist/);
      expect(r.stderr).toContain('npm run build:native');
      expect(r.stderr).toContain('apt-get install libtorch-dev libopenblas0-pthread');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('libtorch discovery obeys FINETORCH_LIBTORCH and says what it tried', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'find-libtorch.mjs')],
      { encoding: 'utf8', env: { ...process.env, FINETORCH_LIBTORCH: '/nonexistent/libtorch', LIBTORCH: '' } });
    // an explicit setting that holds no libtorch is an error, not a silent fall back
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('finetorch: no libtorch found. Tried:\n  FINETORCH_LIBTORCH=/nonexistent/libtorch: no Torch/TorchConfig.cmake under it\n' +
      '      fix: point FINETORCH_LIBTORCH at a libtorch folder');
    // the other steps are still reported, each with its fix
    expect(r.stderr).toMatch(/python3: .*\n {6}fix: /);
    expect(r.stderr).toMatch(/system: (libtorch at .* not used because FINETORCH_LIBTORCH is set|no Torch\/TorchConfig.cmake in .*)\n {6}fix: /);
    const unset = spawnSync(process.execPath, [join(root, 'scripts', 'find-libtorch.mjs')],
      { encoding: 'utf8', env: { ...process.env, FINETORCH_LIBTORCH: '', LIBTORCH: '' } });
    expect(unset.status, unset.stderr).toBe(0);
    const found = JSON.parse(unset.stdout);
    expect(found.tried.slice(0, 2)).toEqual(['FINETORCH_LIBTORCH: not set', 'LIBTORCH: not set']);
    expect(found.cmakePrefix).toBeTruthy();
  });
});
