// Fine-tuning steps: head swap, freezing (with BatchNorm kept in eval), differential
// learning rates, schedules against PyTorch, the seed's presets and advice.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { torch, nn, optim, models, jit, finetune, LRScheduler } from 'finetorch';
import { fixture, flat } from '../helpers';
import { reference } from '../reference';

describe('swapHead', () => {
  it('replaces the head of each architecture with a fresh Linear of the right size', () => {
    const cases: Array<[ReturnType<typeof models.resnet18>, string, number[]]> = [
      [models.resnet18({ numClasses: 1000 }), 'fc', [2, 512]],
      [models.vgg11({ numClasses: 1000 }), 'classifier.6', [2, 4096]],
      [models.efficientnetB0({ numClasses: 1000 }), 'classifier.1', [2, 1280]],
    ];
    for (const [model, path, shape] of cases) {
      const head = finetune.swapHead(model, 2);
      expect(model.head().path).toBe(path);
      expect(model.getSubmodule(path)).toBe(head);
      expect(head.parameters()[0].shape).toEqual(shape);
      model.eval();
      expect(model.forward(torch.randn([1, 3, 32, 32])).shape).toEqual([1, 2]);
    }
  });

  it('keeps the dtype, handles text heads and TorchScript heads', () => {
    const m = models.resnet18({ numClasses: 10 }).to('float64');
    expect(finetune.swapHead(m, 3).parameters()[0].dtype).toBe('float64');
    const config = {
      model_type: 'roberta',
      vocab_size: 50,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 20,
      type_vocab_size: 1,
      pad_token_id: 1,
    };
    const r = models.roberta(config, { numClasses: 5 });
    finetune.swapHead(r, 2);
    expect(r.forward(torch.tensor([[0, 5, 6, 2]])).shape).toEqual([1, 2]);
    const dir = reference('make-vision-fixtures.py', 'vision-jit', ['resnet18'], ['resnet18.script.pt', 'resnet18.trace.pt', 'resnet18.train.safetensors']);
    const s = jit.load(join(dir, 'resnet18.script.pt'));
    finetune.swapHead(s, 4, { path: 'fc' });
    s.eval();
    expect(s.forward(torch.randn([2, 3, 32, 32])).shape).toEqual([2, 4]);
  });
});

describe('freeze', () => {
  it('freezes the first N blocks: no gradients, bit-identical weights and BatchNorm statistics after training', () => {
    torch.manualSeed(0);
    const model = models.resnet18({ numClasses: 3 });
    const frozen = finetune.freeze(model, { blocks: 3 }); // stem, layer1, layer2
    expect(frozen[0]).toBe('conv1.weight');
    expect(frozen.some((n) => n.startsWith('layer2.'))).toBe(true);
    expect(frozen.some((n) => n.startsWith('layer3.'))).toBe(false);
    const before = Object.fromEntries(Object.entries(model.stateDict()).map(([k, v]) => [k, flat(v)]));
    model.train();
    expect(model.getSubmodule('bn1').training).toBe(false); // frozen BatchNorm stays in eval
    expect(model.getSubmodule('layer3.0.bn1').training).toBe(true);
    const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    for (let i = 0; i < 2; i++) {
      opt.zeroGrad();
      nn.functional.crossEntropy(model.forward(torch.randn([4, 3, 32, 32])), torch.tensor([0, 1, 2, 0])).backward();
      opt.step();
    }
    const after = model.stateDict();
    for (const [k, v] of Object.entries(before)) {
      const inFrozen = /^(conv1|bn1|layer1|layer2)\./.test(k);
      if (inFrozen) expect(flat(after[k]), k).toEqual(v);
    }
    expect(flat(after['layer3.0.conv1.weight'])).not.toEqual(before['layer3.0.conv1.weight']);
    expect(flat(after['layer3.0.bn1.running_mean'])).not.toEqual(before['layer3.0.bn1.running_mean']);
  });

  it('trainBatchNorm keeps frozen BatchNorm statistics updating; patterns freeze by name; unfreeze undoes it', () => {
    const model = models.resnet18({ numClasses: 3 });
    finetune.freeze(model, { blocks: 1, trainBatchNorm: true });
    model.train();
    expect(model.getSubmodule('bn1').training).toBe(true);
    const m2 = models.resnet18({ numClasses: 3 });
    finetune.freeze(m2, { patterns: ['layer4.*.bn*', /^conv1\./] });
    expect(
      m2
        .namedParameters()
        .filter(([, p]) => !p.requiresGrad)
        .map(([n]) => n),
    ).toEqual([
      'conv1.weight',
      'layer4.0.bn1.weight',
      'layer4.0.bn1.bias',
      'layer4.0.bn2.weight',
      'layer4.0.bn2.bias',
      'layer4.1.bn1.weight',
      'layer4.1.bn1.bias',
      'layer4.1.bn2.weight',
      'layer4.1.bn2.bias',
    ]);
    finetune.freeze(model, { blocks: 2 });
    finetune.unfreeze(model);
    model.train();
    expect(model.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(model.getSubmodule('layer1.0.bn1').training).toBe(true);
    expect(() => finetune.freeze(model, { blocks: 9 })).toThrow(/blocks must be an integer in 0\.\.6/);
  });
});

describe('differential learning rates', () => {
  it('geometric spread (fastai slice), layer decay (timm), per-block LRs, no decay on 1-D parameters', () => {
    const model = models.resnet18({ numClasses: 2 });
    const lrs = finetune.blockLrs(6, { bottom: 1e-6, top: 1e-4 });
    // 1e-6 * 100^(i/5), as numpy computes it
    [1e-6, 2.5118864315095823e-6, 6.309573444801943e-6, 1.584893192461114e-5, 3.981071705534976e-5, 1e-4].forEach((v, i) => expect(lrs[i]).toBeCloseTo(v, 18));
    expect(finetune.blockLrs(3, { baseLr: 1e-3, decay: 0.5 })).toEqual([2.5e-4, 5e-4, 1e-3]);
    finetune.freeze(model, { blocks: 1 });
    const groups = finetune.paramGroups(model, { bottom: 1e-6, top: 1e-4, weightDecay: 0.01 });
    expect(groups.map((g) => g.block)).toEqual(['layer1', 'layer1', 'layer2', 'layer2', 'layer3', 'layer3', 'layer4', 'layer4', 'head', 'head']);
    for (const g of groups) {
      expect(g.weightDecay).toBe(g.params[0].ndim > 1 ? 0.01 : 0);
      expect(g.params.every((p) => p.requiresGrad)).toBe(true);
    }
    expect(groups[groups.length - 1].lr).toBe(1e-4);
    expect(() => finetune.paramGroups(model, { lrs: [1, 2] })).toThrow(/lrs has 2 entries but the model has 6 blocks/);
  });

  it("takes the recipe's names bottomLr / topLr (bottom / top still work)", () => {
    const want = [0, 1, 2, 3, 4, 5].map((i) => 1e-6 * 100 ** (i / 5)); // geometric from 1e-6 to 1e-4
    const lrs = finetune.blockLrs(6, { bottomLr: 1e-6, topLr: 1e-4 });
    want.forEach((w, i) => expect(lrs[i]).toBeCloseTo(w, 18));
    expect(finetune.blockLrs(6, { bottom: 1e-6, top: 1e-4 })).toEqual(lrs);
    expect(finetune.blockLrs(6, { bottomLr: 1e-6, top: 1e-4 })).toEqual(lrs);
    const model = models.resnet18({ numClasses: 2 });
    const a = finetune.paramGroups(model, { bottomLr: 1e-6, topLr: 1e-4, weightDecay: 0.01 });
    const b = finetune.paramGroups(model, { bottom: 1e-6, top: 1e-4, weightDecay: 0.01 });
    expect(a.map((g) => [g.block, g.lr, g.weightDecay])).toEqual(b.map((g) => [g.block, g.lr, g.weightDecay]));
    expect(() => finetune.blockLrs(6, { bottomLr: 1e-6, bottom: 1e-5, topLr: 1e-4 })).toThrow(
      /bottomLr \(0\.000001\) and its older name bottom \(0\.00001\) disagree/,
    );
    expect(() => finetune.blockLrs(6, { bottomLr: 1e-6 })).toThrow(/give both bottomLr and topLr \(got only bottomLr\)/);
    expect(() => finetune.blockLrs(6, {})).toThrow(/pass \{lrs\}, \{bottomLr, topLr\} or \{baseLr, decay\}/);
  });

  it('each group moves with its own LR (plain SGD: update = lr * grad)', () => {
    torch.manualSeed(4);
    const model = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3));
    const groups = finetune.paramGroups(model, { lrs: [0.01, 0, 0.5], noDecayOn1d: false });
    const opt = new optim.SGD(groups, { lr: 0.1 });
    const before = model.parameters().map((p) => flat(p));
    nn.functional.crossEntropy(model.forward(torch.randn([5, 4])), torch.tensor([0, 1, 2, 1, 0])).backward();
    const grads = model.parameters().map((p) => flat(p.grad!));
    opt.step();
    const lrOf = [0.01, 0.01, 0.5, 0.5];
    model.parameters().forEach((p, i) => flat(p).forEach((v, j) => expect(v).toBeCloseTo(before[i][j] - lrOf[i] * grads[i][j], 6)));
  });

  it('unfreezeInto adds a live group for newly unfrozen blocks', () => {
    const model = models.resnet18({ numClasses: 2 });
    finetune.freeze(model, { blocks: 5 });
    const opt = new optim.AdamW(finetune.paramGroups(model, { lrs: [0, 0, 0, 0, 0, 1e-3] }));
    const n = opt.paramGroups.length;
    expect(finetune.unfreezeInto(model, opt, ['layer4'], { lr: 1e-4 })).toBe(model.getSubmodule('layer4').parameters().length);
    expect(opt.paramGroups.length).toBe(n + 1);
    expect(opt.paramGroups[n].lr).toBe(1e-4);
    expect(
      model
        .getSubmodule('layer4')
        .parameters()
        .every((p) => p.requiresGrad),
    ).toBe(true);
  });
});

describe('schedules match PyTorch (OneCycleLR, and LambdaLR with Hugging Face formulas)', () => {
  const fx = fixture<Record<string, number[][]> & { total: number; warmup: number; base: number[] }>('schedules.json');
  for (const kind of ['linear', 'cosine', 'constant', 'onecycle'] as const) {
    it(`${kind}: both groups, every step, ratios kept`, () => {
      const p = [torch.zeros([1], { requiresGrad: true }), torch.zeros([1], { requiresGrad: true })];
      const opt = new optim.SGD(
        [
          { params: [p[0]], lr: fx.base[0] },
          { params: [p[1]], lr: fx.base[1] },
        ],
        { lr: fx.base[0] },
      );
      const s = new LRScheduler(opt, { kind, totalSteps: fx.total, warmupSteps: kind === 'onecycle' ? 0 : fx.warmup });
      fx[kind].forEach((want, step) => {
        const got = s.currentLrs();
        want.forEach((w, g) => expect(Math.abs(got[g] - w), `${kind} step ${step} group ${g}`).toBeLessThanOrEqual(1e-12 + 1e-9 * w));
        s.step();
      });
    });
  }
});

describe("LRScheduler takes warmupRatio (the recipe's name) as well as warmupSteps", () => {
  it('warmupRatio r over T steps warms up over round(r * T) steps, exactly as warmupSteps does', () => {
    for (const [kind, total, ratio] of [
      ['linear', 100, 0.1],
      ['cosine', 37, 0.25],
      ['constant', 10, 0.05],
    ] as const) {
      const run = (o: { warmupSteps?: number; warmupRatio?: number }) => {
        const p = torch.zeros([1], { requiresGrad: true });
        const s = new LRScheduler(new optim.SGD([p], { lr: 0.1 }), { kind, totalSteps: total, ...o });
        return Array.from({ length: total }, () => {
          const lr = s.currentLrs()[0];
          s.step();
          return lr;
        });
      };
      const steps = Math.round(ratio * total);
      expect(run({ warmupRatio: ratio })).toEqual(run({ warmupSteps: steps }));
      // the warmup is linear from 0: step k < steps has lr 0.1 * k / steps
      expect(run({ warmupRatio: ratio }).slice(0, steps)).toEqual(Array.from({ length: steps }, (_, k) => 0.1 * (k / steps)));
    }
    const p = torch.zeros([1], { requiresGrad: true });
    expect(() => new LRScheduler(new optim.SGD([p], { lr: 0.1 }), { kind: 'linear', totalSteps: 10, warmupSteps: 1, warmupRatio: 0.1 })).toThrow(
      /give warmupSteps or warmupRatio, not both/,
    );
    expect(() => new LRScheduler(new optim.SGD([p], { lr: 0.1 }), { kind: 'linear', totalSteps: 10, warmupRatio: 1.5 })).toThrow(
      /warmupRatio must be a number in 0\.\.1, got 1\.5/,
    );
  });
});

describe("the seed's presets and advice", () => {
  it('recommends a strategy from the sample count and says why; under ~1,000 samples it follows the demo, not the seed', () => {
    // the demo (README): 200 labels, freezing 4 of 6 blocks at lr 3e-3 without warmup was best (90.7%), head only worst (63.1%)
    for (const n of [200, 240, 999]) {
      const r = finetune.recommend(n);
      expect(r).toMatchObject({ strategy: 'freeze-lower', optimizer: { lr: 3e-3 }, lr: { all: 3e-3 }, warmup: false });
      expect(Math.round(r.freezeFraction * 6)).toBe(4);
      expect(r.reason).toMatch(new RegExp(`^${n} samples: under ~1,000, freeze the lower two thirds`));
      expect(r.reason).toMatch(/The seed advises training only the head here.*head only was worst \(63% accuracy\) and freezing 4 of 6 blocks best \(91%\)/);
      expect(finetune.checkPlan({ strategy: r.strategy, numSamples: n, backboneLr: 3e-3, warmup: r.warmup })).toEqual([]);
    }
    expect(finetune.recommend(5000)).toMatchObject({ strategy: 'freeze-lower', optimizer: { bottomLr: 1e-5, topLr: 1e-3 }, lr: { bottom: 1e-5, top: 1e-3 } });
    expect(finetune.recommend(5000).strategy).toBe('freeze-lower');
    expect(finetune.recommend(50000).strategy).toBe('differential');
    expect(finetune.recommend(200000).strategy).toBe('full');
    expect(finetune.LR_PRESETS.differential.bottom).toEqual([1e-6, 1e-5]);
  });
  it('warns about the pitfalls', () => {
    expect(finetune.checkPlan({ strategy: 'full', numSamples: 300 })[0]).toMatch(/full fine-tuning on 300 samples/);
    expect(finetune.checkPlan({ strategy: 'differential', numSamples: 5000, backboneLr: 1e-3 })[0]).toMatch(/>= 1e-3/);
    expect(finetune.checkPlan({ strategy: 'differential', numSamples: 5000, backboneLr: 1e-5 })).toEqual([]);
    expect(finetune.checkPlan({ strategy: 'full', numSamples: 5000, warmup: false })[0]).toMatch(/no warmup/);
  });
});

describe('recipes (old names)', () => {
  it('keeps the fine-tuning steps reachable under recipes.* as aliases of finetune.*', async () => {
    const { recipes, optim: o, LRScheduler: L } = await import('finetorch');
    expect(recipes.swapHead).toBe(finetune.swapHead);
    expect(recipes.freeze).toBe(finetune.freeze);
    expect(recipes.paramGroups).toBe(finetune.paramGroups);
    expect(recipes.LRScheduler).toBe(L);
    expect(o.LRScheduler).toBe(L);
  });
});
