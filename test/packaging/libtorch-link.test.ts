// The source build links the libraries of the libtorch it was pointed at, never
// another libtorch's (issue 14: on a machine with Debian's libtorch-dev, a build
// against a pip torch's libtorch linked Debian's /usr/lib libtorch.so and
// libc10.so, and the binary died at load with an undefined symbol).
// CMakeLists.txt checks the libraries TorchConfig found at configure time;
// these tests run CMake's configure step only (seconds, no compile).
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cmakePrefixFor, libtorchAt } from '../../scripts/libtorch.mjs';

const root = resolve(__dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'finetorch-link-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function configure(torchPrefix: string, defs: string[] = []) {
  const dir = join(tmp, `b${n++}`);
  const r = spawnSync('cmake', ['-S', root, '-B', dir, `-DCMAKE_PREFIX_PATH=${torchPrefix}`, `-DTorch_DIR=${join(torchPrefix, 'Torch')}`, ...defs], {
    encoding: 'utf8',
    timeout: 120000,
  });
  const cache = existsSync(join(dir, 'CMakeCache.txt')) ? readFileSync(join(dir, 'CMakeCache.txt'), 'utf8') : '';
  const cached = (name: string) => new RegExp(`^${name}:FILEPATH=(.*)$`, 'm').exec(cache)?.[1];
  // CMake wraps message() text across lines: compare with whitespace folded
  return { status: r.status, output: (r.stdout + r.stderr).replace(/\s+/g, ' '), cached };
}

const system = cmakePrefixFor('/usr/lib/x86_64-linux-gnu/cmake');
// A pip torch: the one FINETORCH_LIBTORCH names, else CI's torch 2.x venv (scripts/test-torch2.mjs venv).
const wheelPrefix = [process.env.FINETORCH_LIBTORCH, join(root, '.venv-torch2', 'lib', 'python3.11', 'site-packages', 'torch')]
  .map((d) => (d ? cmakePrefixFor(d) : null))
  .find((p) => p && !p.startsWith('/usr/'));

describe('the build links the chosen libtorch', () => {
  it('the configure step fails, naming the library and folder, when a library is not in the chosen libtorch folder', () => {
    const prefix = system ?? wheelPrefix;
    expect(prefix, 'a libtorch to configure against (Debian libtorch-dev or a pip torch)').toBeTruthy();
    const elsewhere = mkdtempSync(join(tmp, 'not-libtorch-'));
    const r = configure(prefix as string, [`-DFINETORCH_LIBTORCH_LIBDIR=${elsewhere}`]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(new RegExp(`finetorch: '[^']+\\.so[^']*' is not in the chosen libtorch's library folder ${realpathSync(elsewhere)}`));
    expect(r.output).toContain('linking it would mix two libtorch versions');
  });

  it("with the chosen folder named (as build-native.mjs does), TorchConfig's find_library results are that libtorch's", () => {
    const prefix = (wheelPrefix ?? system) as string;
    const libdir = realpathSync(libtorchAt(prefix).libdir);
    const r = configure(prefix, [`-DFINETORCH_LIBTORCH_LIBDIR=${libdir}`]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`finetorch: libtorch ${libtorchAt(prefix).version} libraries from ${libdir}`);
    expect(realpathSync(r.cached('TORCH_LIBRARY') as string)).toBe(realpathSync(join(libdir, 'libtorch.so')));
    expect(realpathSync(r.cached('c10_LIBRARY') as string).startsWith(`${libdir}/`)).toBe(true);
  });

  it("a pip torch's libtorch next to Debian's: without the folder named, the check catches CMake finding Debian's", () => {
    // Only meaningful where both are installed (CI: Debian's libtorch-dev and the torch 2.x venv).
    if (!system || !wheelPrefix) {
      expect(system ?? wheelPrefix, 'at least one libtorch').toBeTruthy();
      return;
    }
    const r = configure(wheelPrefix);
    expect(r.cached('TORCH_LIBRARY')).toMatch(/^\/usr\/lib\/x86_64-linux-gnu\/libtorch\.so/);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/finetorch: '\/usr\/lib\/x86_64-linux-gnu\/lib(torch|c10)\.so[^']*' is not in the chosen libtorch's library folder/);
  });
});
