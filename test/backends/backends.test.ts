// torch.backends and the float32 matmul precision: PyTorch's defaults (read
// from Debian's Python torch 1.13, which reads the same libtorch context) and
// writes that read back. The flags are process-wide; each test restores them.
import { execFileSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { torch } from 'finetorch';

const PYTHON = `
import json, torch
b = torch.backends
print(json.dumps({'cudnnEnabled': b.cudnn.enabled, 'benchmark': b.cudnn.benchmark, 'deterministic': b.cudnn.deterministic,
                  'cudnnAllowTF32': b.cudnn.allow_tf32, 'matmulAllowTF32': b.cuda.matmul.allow_tf32,
                  'precision': torch.get_float32_matmul_precision(), 'cudnnAvailable': b.cudnn.is_available()}))
`;
const py = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PYTHON]).toString());

describe('torch.backends', () => {
  it("defaults are PyTorch's", () => {
    const { cudnn, cuda } = torch.backends;
    expect({
      cudnnEnabled: cudnn.enabled,
      benchmark: cudnn.benchmark,
      deterministic: cudnn.deterministic,
      cudnnAllowTF32: cudnn.allowTF32,
      matmulAllowTF32: cuda.matmul.allowTF32,
      precision: torch.getFloat32MatmulPrecision(),
      cudnnAvailable: cudnn.isAvailable(),
    }).toEqual(py);
  });

  it('each switch is writable and reads back', () => {
    const { cudnn, cuda } = torch.backends;
    for (const name of ['enabled', 'benchmark', 'deterministic', 'allowTF32'] as const) {
      const before = cudnn[name];
      cudnn[name] = !before;
      expect(cudnn[name]).toBe(!before);
      cudnn[name] = before;
      expect(cudnn[name]).toBe(before);
    }
    cuda.matmul.allowTF32 = true;
    expect(cuda.matmul.allowTF32).toBe(true);
    // as in PyTorch, the TF32 matmul switch and the float32 matmul precision are one setting
    expect(torch.getFloat32MatmulPrecision()).toBe('high');
    cuda.matmul.allowTF32 = false;
    expect(torch.getFloat32MatmulPrecision()).toBe('highest');
  });

  it('setFloat32MatmulPrecision reads back and drives allowTF32 as in PyTorch', () => {
    for (const p of ['medium', 'high', 'highest'] as const) {
      torch.setFloat32MatmulPrecision(p);
      expect(torch.getFloat32MatmulPrecision()).toBe(p);
      expect(torch.backends.cuda.matmul.allowTF32).toBe(p !== 'highest');
    }
  });

  it('bad values are refused with what was wrong', () => {
    expect(() => {
      torch.backends.cudnn.benchmark = 1 as unknown as boolean;
    }).toThrow(/torch\.backends\.cudnn\.benchmark must be a boolean, got 1/);
    expect(() => torch.setFloat32MatmulPrecision('low' as never)).toThrow(/expected 'highest', 'high' or 'medium', got "low"/);
    expect(torch.getFloat32MatmulPrecision()).toBe('highest');
  });
});
