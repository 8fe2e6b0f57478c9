// Recipe problems found before any data is read, through the CLI as a user
// runs it: each is exit 2 with the field or path named, no stack trace and
// no internal error text.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './cli-helpers';

let dir = '';
const recipe = (extra: Record<string, unknown> = {}) => ({
  model: { arch: 'resnet18', width: 16 },
  data: { kind: 'imageFolder', root: 'images', imageSize: 28 },
  optimizer: { lr: 1e-3 },
  epochs: 1,
  ...extra,
});
function write(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}
function expectUsage(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.stderr).toMatch(pattern);
  expect(r.status).toBe(2);
  expect(r.stderr).not.toMatch(/\n\s+at |Cannot read properties|EISDIR/);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finetorch-recipe-errors-'));
  mkdirSync(join(dir, 'recipe-folder.yaml'));
  write('ok.json', recipe());
});

describe('recipe errors through the CLI', () => {
  it('a recipe path that is a folder: exit 2 naming the path', () => {
    expectUsage(cli(['train', '--config', join(dir, 'recipe-folder.yaml')]), /--config: .*recipe-folder\.yaml is a folder; give the recipe file/);
  });

  it('prototype keys in --set paths and in recipe files: exit 2 naming the field, Object.prototype untouched', () => {
    const ok = join(dir, 'ok.json');
    expectUsage(cli(['train', '--config', ok, '--set', '__proto__.x=1']), /--set: "__proto__" in "__proto__\.x" is not a recipe field/);
    expectUsage(
      cli(['train', '--config', ok, '--set', 'model.constructor.prototype.x=1']),
      /--set: "constructor" in "model\.constructor\.prototype\.x" is not a recipe field/,
    );
    expectUsage(cli(['train', '--config', ok, '--set', 'optimizer.prototype=1']), /"prototype" in "optimizer\.prototype"/);
    const json = write('proto.json', '{"model": {"arch": "resnet18"}, "optimizer": {"lr": 0.001}, "epochs": 1, "__proto__": {"x": 1}}');
    expectUsage(cli(['train', '--config', json]), /recipe\.__proto__: "__proto__" is not allowed as a field name/);
    const yaml = write('proto.yaml', 'model:\n  arch: resnet18\n  constructor: {x: 1}\noptimizer: {lr: 0.001}\nepochs: 1\n');
    expectUsage(cli(['train', '--config', yaml]), /recipe\.model\.constructor: "constructor" is not allowed as a field name/);
  }, 60000);

  it('sizes over their maximum: exit 2 naming recipe.<field> and the limit', () => {
    expectUsage(
      cli(['train', '--config', write('wide.json', recipe({ model: { arch: 'resnet18', width: 100000 } }))]),
      /recipe\.model\.width: must be at most 256 .*\(got 100000\)/,
    );
    expectUsage(
      cli(['train', '--config', write('big.json', recipe({ data: { kind: 'imageFolder', root: 'images', imageSize: 20000 } }))]),
      /recipe\.data\.imageSize: must be at most 4,096 .*\(got 20000\)/,
    );
    expectUsage(
      cli(['train', '--config', join(dir, 'ok.json'), '--set', 'data.augment.randomCropPadding=20000']),
      /recipe\.data\.augment\.randomCropPadding: must be at most 1,024 .*\[set by --set data\.augment\.randomCropPadding=20000\] \(got 20000\)/,
    );
  }, 60000);
});
