// Multi-tensor (foreach) and fused optimizer steps against PyTorch's
// foreach=True (Debian's Python torch 1.13): two param groups with different
// lr and weight decay, a float64 parameter beside float32 ones (grouping by
// dtype), a 4-D parameter, and the first group's lr changed at runtime.
import { execFileSync } from 'node:child_process';
import { describe, it, expect } from 'vitest';
import { torch, optim, loadReport, type Tensor } from 'finetorch';

type Kind = 'SGD' | 'Adam' | 'AdamW';
interface Config {
  kind: Kind;
  defaults: Record<string, unknown>;
  group2: Record<string, unknown>;
}
interface Param {
  shape: number[];
  dtype: 'float32' | 'float64';
  data: number[];
}

const STEPS = 6;
const LR_CHANGE_STEP = 3; // before this step, group 0's lr is halved on both sides

const configs: Config[] = [
  { kind: 'SGD', defaults: { lr: 0.1, momentum: 0.9, weight_decay: 0.01 }, group2: { lr: 0.05, weight_decay: 0 } },
  { kind: 'SGD', defaults: { lr: 0.1, momentum: 0.9, nesterov: true }, group2: { lr: 0.02, weight_decay: 0.001 } },
  { kind: 'SGD', defaults: { lr: 0.05, momentum: 0.8, dampening: 0.1 }, group2: { weight_decay: 0.1 } },
  { kind: 'SGD', defaults: { lr: 0.1, weight_decay: 0.01 }, group2: { lr: 0.3 } },
  { kind: 'Adam', defaults: { lr: 0.01 }, group2: { lr: 0.003, weight_decay: 0.1 } },
  { kind: 'Adam', defaults: { lr: 0.01, amsgrad: true, weight_decay: 0.01 }, group2: { lr: 0.02, betas: [0.8, 0.99] } },
  { kind: 'AdamW', defaults: { lr: 0.01, weight_decay: 0.01 }, group2: { lr: 0.001, weight_decay: 0.1, betas: [0.8, 0.99] } },
  { kind: 'AdamW', defaults: { lr: 0.01, amsgrad: true, eps: 1e-6 }, group2: { lr: 0.02, weight_decay: 0 } },
];

// Python: initial parameters, gradients for every step, and each config's
// parameters after every step with foreach=True.
const PYTHON = `
import json, sys, torch
torch.manual_seed(0)
configs, steps, lr_change = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
init = [torch.randn(3, 4), torch.randn(5, dtype=torch.float64), torch.randn(2, 3, 3, 3)]
grads = [[torch.randn_like(p) for p in init] for _ in range(steps)]
enc = lambda t: {'shape': list(t.shape), 'dtype': str(t.dtype).replace('torch.', ''), 'data': t.flatten().tolist()}
out = {'init': [enc(p) for p in init], 'grads': [[enc(g) for g in gs] for gs in grads], 'runs': []}
for c in configs:
    ps = [p.clone().requires_grad_() for p in init]
    opt = getattr(torch.optim, c['kind'])([{'params': ps[:1]}, {'params': ps[1:], **c['group2']}], foreach=True, **c['defaults'])
    run = []
    for s in range(steps):
        if s == lr_change:
            opt.param_groups[0]['lr'] *= 0.5
        for p, g in zip(ps, grads[s]):
            p.grad = g.clone()
        opt.step()
        run.append([enc(p.detach()) for p in ps])
    out['runs'].append(run)
print(json.dumps(out))
`;
const ref = JSON.parse(
  execFileSync('/usr/bin/python3', ['-c', PYTHON, JSON.stringify(configs), String(STEPS), String(LR_CHANGE_STEP)], { maxBuffer: 1 << 26 }).toString(),
) as { init: Param[]; grads: Param[][]; runs: Param[][][] };

const camel = (k: string) => k.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase());
const camelKeys = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));
const tensor = (p: Param, requiresGrad = false) => torch.tensor(Float64Array.from(p.data), { dtype: p.dtype, shape: p.shape, requiresGrad });
const values = (t: Tensor) => Array.from(t.detach().flatten().dataSync() as Float32Array | Float64Array);

function maxDiff(t: Tensor, p: Param): number {
  const a = values(t);
  expect(a.length).toBe(p.data.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - p.data[i])), 0);
}

function make(c: Config, params: Tensor[], mode: { foreach?: boolean; fused?: boolean }) {
  const groups = [{ params: params.slice(0, 1) }, { params: params.slice(1), ...camelKeys(c.group2) }];
  const defaults = { ...camelKeys(c.defaults), ...mode };
  return c.kind === 'SGD' ? new optim.SGD(groups, defaults as { lr: number }) : new optim[c.kind](groups, defaults);
}

/** Runs `c` for STEPS steps with the reference gradients; returns the parameters after each step. */
function run(c: Config, mode: { foreach?: boolean; fused?: boolean }, onStep?: (opt: optim.Optimizer, step: number) => void): Tensor[][] {
  const params = ref.init.map((p) => tensor(p, true));
  const opt = make(c, params, mode);
  const out: Tensor[][] = [];
  for (let s = 0; s < STEPS; s++) {
    if (s === LR_CHANGE_STEP) opt.paramGroups[0].lr = opt.paramGroups[0].lr * 0.5;
    params.forEach((p, i) => {
      p.grad = tensor(ref.grads[s][i]);
    });
    opt.step();
    onStep?.(opt, s);
    out.push(params.map((p) => p.detach().clone()));
  }
  return out;
}

const name = (c: Config) => `${c.kind} ${JSON.stringify(c.defaults)} / group 2 ${JSON.stringify(c.group2)}`;

describe('foreach=true matches PyTorch 1.13 foreach=True', () => {
  configs.forEach((c, ci) => {
    it(name(c), () => {
      let worst = 0;
      const trajectory = run(c, { foreach: true }, (opt) => expect(opt.stepImplementation).toBe('foreach'));
      trajectory.forEach((params, s) =>
        params.forEach((p, i) => {
          worst = Math.max(worst, maxDiff(p, ref.runs[ci][s][i]));
        }),
      );
      console.log(`max |finetorch foreach - PyTorch foreach| ${c.kind} config ${ci}: ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-6);
    });
  });
});

describe('the for-loop stays the CPU default', () => {
  it("no option steps with libtorch's loop; foreach: false too; both agree with foreach within rounding", () => {
    const p = torch.randn([4], { requiresGrad: true });
    expect(new optim.AdamW([p]).stepImplementation).toBe('forLoop');
    expect(new optim.SGD([torch.randn([2], { requiresGrad: true })], { lr: 0.1, foreach: false }).stepImplementation).toBe('forLoop');
    configs.forEach((c, ci) => {
      const loop = run(c, {}, (opt) => expect(opt.stepImplementation).toBe('forLoop'));
      let worst = 0;
      loop.forEach((params, s) =>
        params.forEach((q, i) => {
          worst = Math.max(worst, maxDiff(q, ref.runs[ci][s][i]));
        }),
      );
      console.log(`max |finetorch for-loop - PyTorch foreach| ${c.kind} config ${ci}: ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-6);
    });
  });
});

describe('state dict and resume with foreach', () => {
  for (const c of [configs[0], configs[5], configs[6]]) {
    it(`${c.kind}: PyTorch's state layout, and 3 + 3 steps through stateDict() equal 6 steps bit for bit`, () => {
      const whole = run(c, { foreach: true });
      // first half, then a fresh optimizer and fresh parameter objects loaded from the first
      const params = ref.init.map((p) => tensor(p, true));
      let opt = make(c, params, { foreach: true });
      for (let s = 0; s < 3; s++) {
        if (s === LR_CHANGE_STEP) opt.paramGroups[0].lr *= 0.5;
        params.forEach((p, i) => {
          p.grad = tensor(ref.grads[s][i]);
        });
        opt.step();
      }
      const dict = opt.stateDict();
      const keys = c.kind === 'SGD' ? ['momentumBuffer'] : ['step', 'expAvg', 'expAvgSq', ...(c.defaults.amsgrad ? ['maxExpAvgSq'] : [])];
      for (let i = 0; i < params.length; i++) expect(Object.keys(dict.state[i]).sort()).toEqual([...keys].sort());
      if (c.kind !== 'SGD') expect(dict.state[0].step).toBe(3);
      const resumed = params.map((p) => p.detach().clone().requiresGrad_(true));
      opt = make(c, resumed, { foreach: true });
      opt.loadStateDict(dict);
      for (let s = 3; s < STEPS; s++) {
        if (s === LR_CHANGE_STEP) opt.paramGroups[0].lr *= 0.5;
        resumed.forEach((p, i) => {
          p.grad = tensor(ref.grads[s][i]);
        });
        opt.step();
      }
      resumed.forEach((p, i) => expect(values(p)).toEqual(values(whole[STEPS - 1][i])));
    });
  }

  it('a parameter without a gradient is skipped and gets no state, as in the loop', () => {
    const a = torch.randn([3], { requiresGrad: true });
    const b = torch.randn([3], { requiresGrad: true });
    const before = values(b);
    const opt = new optim.AdamW([a, b], { lr: 0.1, foreach: true });
    a.grad = torch.ones([3]);
    opt.step();
    expect(values(b)).toEqual(before);
    expect(Object.keys(opt.stateDict().state)).toEqual(['0']);
  });
});

const [major, minor] = loadReport.libtorch.version.split('.').map(Number);
const cpuFused = major > 2 || (major === 2 && minor >= 4);

describe(`fused on the CPU (libtorch ${loadReport.libtorch.version}: ${cpuFused ? 'has' : 'has no'} CPU fused kernels)`, () => {
  if (cpuFused) {
    configs.forEach((c, ci) => {
      it(`fused equals foreach within float32 rounding: ${name(c)}`, () => {
        const fused = run(c, { fused: true }, (opt) => expect(opt.stepImplementation).toBe('fused'));
        let worst = 0;
        fused.forEach((params, s) =>
          params.forEach((p, i) => {
            worst = Math.max(worst, maxDiff(p, ref.runs[ci][s][i]));
          }),
        );
        console.log(`max |finetorch fused - PyTorch foreach| ${c.kind} config ${ci}: ${worst.toExponential(2)}`);
        expect(worst).toBeLessThan(1e-6);
      });
    });
  } else {
    it('asking for fused with CPU parameters throws, naming the optimizer, the device and the version boundary', () => {
      for (const Kind of [optim.SGD, optim.Adam, optim.AdamW]) {
        const p = torch.randn([2], { requiresGrad: true });
        expect(() => new Kind([p], { lr: 0.1, fused: true })).toThrow(
          /optim\.(SGD|Adam|AdamW): fused: libtorch .* has no fused (SGD|Adam|AdamW) kernel for parameters on cpu .*2\.4.*foreach: true/,
        );
      }
    });
  }
});

describe('option checks', () => {
  const p = () => torch.randn([2], { requiresGrad: true });
  it('foreach and fused together, non-booleans, and step options in a param group are refused', () => {
    expect(() => new optim.AdamW([p()], { foreach: true, fused: true })).toThrow(/foreach and fused cannot both be true/);
    expect(() => new optim.AdamW([p()], { foreach: 'yes' as unknown as boolean })).toThrow(/foreach must be a boolean/);
    expect(() => new optim.SGD([{ params: [p()], foreach: true } as never], { lr: 0.1 })).toThrow(/foreach applies to the whole optimizer/);
    const opt = new optim.Adam([p()], { foreach: true });
    expect(opt.foreach).toBe(true);
    expect(opt.fused).toBe(false);
    expect(opt.stateDict().paramGroups[0]).not.toHaveProperty('foreach');
  });
});
