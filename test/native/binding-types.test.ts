// The typed native boundary (lib/native/addon-types.ts) matches the addon:
// every function the addon exports has a type and every typed function
// exists, and a misspelled native name or a wrong argument fails to compile.
import { describe, it, expect } from 'vitest';
import ts from 'typescript';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { native } from '../../dist/native/loader.js';

const root = resolve(__dirname, '../..');
const types = join(root, 'lib/native/addon-types.ts');
const options: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  skipLibCheck: true,
  types: ['node'],
};

function compile(source: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ft-types-'));
  try {
    const file = join(dir, 'use.ts');
    writeFileSync(
      file,
      `import type { NativeBinding } from ${JSON.stringify(types.replace(/\.ts$/, '.js'))};\ndeclare const native: NativeBinding;\n${source}\n`,
    );
    const program = ts.createProgram([file], options);
    return ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === file)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('typed native boundary', () => {
  it('NativeBinding names exactly the functions the addon exports', () => {
    const program = ts.createProgram([types], options);
    const checker = program.getTypeChecker();
    const file = program.getSourceFile(types)!;
    const binding = file.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'NativeBinding')!;
    const typed = checker
      .getPropertiesOfType(checker.getTypeAtLocation(binding.name))
      .map((p) => p.name)
      .sort();
    const exported = Object.keys(native).sort();
    expect(typed).toEqual(exported);
    expect(exported.length).toBeGreaterThan(150);
  });

  it('a misspelled name or a wrong argument fails to compile; correct calls compile', () => {
    expect(
      compile("native.zeros([2, 3], { dtype: 'float32' });\nnative.moduleForward(native.createModule('Linear', { inFeatures: 2, outFeatures: 3 }), []);"),
    ).toEqual([]);
    expect(compile('native.moduleForwad(null as never, []);').join('\n')).toMatch(/Property 'moduleForwad' does not exist on type 'NativeBinding'/);
    expect(compile("native.zeros('2x3');").join('\n')).toMatch(/not assignable to parameter of type 'number\[\]'/);
    expect(compile("native.createModule('Linaer', {});").join('\n')).toMatch(/Linaer/);
    expect(compile("native.createModule('Linear', { inFeature: 2, outFeatures: 3 });").join('\n')).toMatch(/inFeature/);
  });
});
