#!/usr/bin/env node
// npm run check:gpu: finetorch on a GPU against the PyTorch installed on the same machine.
//
//   npm run check:gpu                          on a CUDA machine (about 3-5 minutes on one H200)
//   node scripts/check-gpu.mjs --device cpu --quick   smoke test of every comparison on the CPU, tiny sizes
//
// Options
//   --device cuda|cpu   where finetorch and PyTorch run the checks (default cuda)
//   --quick             tiny sizes and a few steps (figures meaningless; for testing this script)
//   --python PATH       the Python with torch (+ torchvision, transformers) to compare against
//                       (default: FINETORCH_CHECK_PYTHON, else python3 on PATH)
//   --out DIR           where check-gpu.json and check-gpu.md are written (default: a new temporary folder)
//   --only a,b          some parts: ops, optim, train, autocast, text, vision, bench
//   --budget SECONDS    stop starting new parts after this long (default 450), so one call under an
//                       8-minute limit still prints what it has
//   --keep              keep the models and reference files (a temporary folder, printed)
//
// It needs only the built package (dist/ and a finetorch.node; FINETORCH_BINARY picks one) and a
// Python with torch: no dev dependencies. Every finetorch part runs in its own child process
// (`--worker`), so a crash in one (a segfault in a CUDA kernel) is reported and the others still run.
// Exit status: 0 every check passed (some may be skipped), 1 a check failed or crashed,
// 2 no CUDA device (for --device cuda), 3 finetorch or the options are unusable.
//
// What it compares
//   ops       finetorch on the device vs finetorch on the CPU (matmul, conv, norms, losses, reductions, a backward)
//   optim     AdamW with two param groups, a few steps: finetorch (default, and fused when available)
//             vs PyTorch's foreach / fused / for-loop on the device, and vs finetorch on the CPU
//   train     one training step of ResNet-18 (batch norm in train mode, SGD with momentum): loss, logits,
//             gradients and the parameters and running stats after the step, vs PyTorch on the device
//   autocast  bf16 autocast logits vs Python's torch.autocast (needs finetorch's torch.autocast)
//   text      BERT / RoBERTa / DistilBERT written by transformers' save_pretrained: eval logits on a
//             padded batch vs transformers on the device and on the CPU
//   vision    every torchvision architecture finetorch builds: eval logits of a seeded .pth (and under
//             bf16 autocast) vs torchvision on the device and on the CPU
//   bench     training throughput and peak memory, finetorch beside PyTorch in the same run:
//             ResNet-50 224 b64, ResNet-18 224 b128, BERT-base seq 128 b32; PyTorch default (foreach
//             AdamW), fused AdamW, + bf16 autocast, + channels_last; finetorch the same where it has the API
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const PARTS = ['ops', 'optim', 'train', 'autocast', 'text', 'vision', 'bench'];

// Tolerances, relative to the largest magnitude of the reference (max abs diff / max |reference|).
// Same device, same libtorch kernels: only reduction order differs. Across devices cuDNN convolutions
// run in TF32 by default (PyTorch's and libtorch's torch.backends.cudnn.allow_tf32 = True).
const TOL = { sameDevice: 1e-3, crossDevice: 2e-2, exactOp: 1e-4, convOp: 5e-3, optim: 1e-5, bf16: 2e-2 };

// BERT-base, as transformers' BertConfig defaults.
const BERT_BASE = {
  vocab_size: 30522,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  num_labels: 2,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};
const BERT_TINY = { ...BERT_BASE, vocab_size: 2000, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128 };

function workloads(quick) {
  return quick
    ? [
        {
          key: 'resnet50',
          title: 'ResNet-50 32x32 b4 (quick)',
          unit: 'img/s',
          kind: 'vision',
          model: 'resnet50',
          size: 32,
          batch: 4,
          variants: ['default', 'fused', 'fused+bf16', 'fused+bf16+cl'],
        },
        {
          key: 'resnet18',
          title: 'ResNet-18 32x32 b8 (quick)',
          unit: 'img/s',
          kind: 'vision',
          model: 'resnet18',
          size: 32,
          batch: 8,
          variants: ['default', 'fused+bf16+cl'],
        },
        {
          key: 'bert',
          title: 'BERT-tiny seq 16 b4 (quick)',
          unit: 'seq/s',
          kind: 'text',
          config: BERT_TINY,
          seq: 16,
          batch: 4,
          variants: ['default', 'fused+bf16'],
        },
      ]
    : [
        {
          key: 'resnet50',
          title: 'ResNet-50 224x224 batch 64',
          unit: 'img/s',
          kind: 'vision',
          model: 'resnet50',
          size: 224,
          batch: 64,
          variants: ['default', 'fused', 'fused+bf16', 'fused+bf16+cl'],
        },
        {
          key: 'resnet18',
          title: 'ResNet-18 224x224 batch 128',
          unit: 'img/s',
          kind: 'vision',
          model: 'resnet18',
          size: 224,
          batch: 128,
          variants: ['default', 'fused+bf16+cl'],
        },
        {
          key: 'bert',
          title: 'BERT-base seq 128 batch 32',
          unit: 'seq/s',
          kind: 'text',
          config: BERT_BASE,
          seq: 128,
          batch: 32,
          variants: ['default', 'fused+bf16'],
        },
      ];
}
const VARIANT_TITLES = {
  default: 'fp32, AdamW default (foreach)',
  fused: 'fp32, fused AdamW',
  'fused+bf16': 'fused AdamW + bf16 autocast',
  'fused+bf16+cl': 'fused AdamW + bf16 + channels_last',
};

// =====================================================================================
// Workers: each runs one part in its own process and prints one JSON line.
// =====================================================================================

async function loadFinetorch() {
  return import(pathToFileURL(join(root, 'dist', 'index.js')).href);
}

/** Max abs diff and its ratio to the reference's largest magnitude; both tensors are brought to the CPU in float32. */
function compare(got, want) {
  const a = got.to('cpu').to('float32');
  const b = want.to('cpu').to('float32');
  if (a.shape.join('x') !== b.shape.join('x')) return { maxAbs: Infinity, rel: Infinity, note: `shape ${a.shape} vs ${b.shape}` };
  const maxAbs = a.numel() ? Number(a.sub(b).abs().max().item()) : 0;
  const scale = b.numel() ? Number(b.abs().max().item()) : 0;
  return { maxAbs, rel: maxAbs / Math.max(scale, 1e-12) };
}

function check(name, c, tol, metric = 'rel', note) {
  const value = metric === 'rel' ? c.rel : c.maxAbs;
  return { name, maxAbs: c.maxAbs, rel: c.rel, tol, metric, ok: Number.isFinite(value) && value <= tol, note: note ?? c.note };
}

function devices(o) {
  return o.device === 'cpu' ? { dev: 'cpu', acType: 'cpu' } : { dev: 'cuda:0', acType: 'cuda' };
}

/** The best-practice APIs this build of finetorch has (they landed with issue 14; older builds lack them). */
function features(ft) {
  const { torch, nn } = ft;
  return {
    autocast: typeof torch.autocast === 'function',
    channelsLast: typeof nn.Module?.prototype?.toMemoryFormat === 'function' && typeof inputToMemoryFormat(ft) === 'function',
  };
}

function inputToMemoryFormat(ft) {
  return ft.nn.inputToMemoryFormat ?? ft.inputToMemoryFormat;
}

const workers = {
  async probe() {
    const ft = await loadFinetorch();
    const { cuda, loadReport } = ft;
    let available = false,
      count = 0,
      builtWithCuda = null,
      why = null;
    try {
      builtWithCuda = cuda.builtWithCuda();
    } catch (e) {
      why = e.message;
    }
    try {
      available = cuda.isAvailable();
      count = available ? cuda.deviceCount() : 0;
    } catch (e) {
      why = e.message;
    }
    const pkg = JSON.parse(await (await import('node:fs/promises')).readFile(join(root, 'package.json'), 'utf8'));
    return {
      finetorch: pkg.version,
      binary: loadReport.path,
      origin: loadReport.origin,
      libtorch: loadReport.libtorch?.version ?? null,
      builtWithCuda,
      cudaAvailable: available,
      deviceCount: count,
      why,
      features: features(ft),
      node: process.version,
    };
  },

  async ops(o) {
    const ft = await loadFinetorch();
    const { torch, nn } = ft;
    const { dev } = devices(o);
    torch.manualSeed(0);
    const checks = [];
    const on = (t) => t.to(dev);
    const pair = (name, fn, tol) => {
      try {
        const want = torch.noGrad(() => fn('cpu'));
        const got = torch.noGrad(() => fn(dev));
        checks.push(check(`${name}: ${dev} vs cpu`, compare(got, want), tol));
      } catch (e) {
        checks.push({ name, ok: false, error: e.message.split('\n')[0] });
      }
    };
    const a = torch.randn([96, 256]),
      b = torch.randn([256, 64]);
    const img = torch.randn([4, 8, 20, 20]);
    const ids = torch.randint(0, 50, [4, 7]);
    const target = torch.randint(0, 10, [16]);
    const logits = torch.randn([16, 10]);
    const x = (d, t) => (d === 'cpu' ? t : on(t));
    pair('matmul', (d) => x(d, a).matmul(x(d, b)), TOL.exactOp);
    pair('softmax / logSoftmax', (d) => x(d, logits).softmax(-1).add(x(d, logits).logSoftmax(1)), TOL.exactOp);
    pair('sum / mean / var / cumsum', (d) => torch.stack([x(d, a).sum(), x(d, a).mean(), x(d, a).var(), x(d, a).cumsum(1).sum()]), TOL.exactOp);
    pair(
      'exp / log1p / erf / sqrt / tanh',
      (d) => x(d, a).exp().add(x(d, a).abs().log1p()).add(x(d, a).erf()).add(x(d, a).abs().sqrt()).add(x(d, a).tanh()),
      TOL.exactOp,
    );
    pair(
      'sort / topk / argmax',
      (d) => torch.cat([x(d, logits).sort(1, true)[0].flatten(), x(d, logits).topk(3, 1)[0].flatten(), x(d, logits).argmax(1).to('float32')]),
      TOL.exactOp,
    );
    pair(
      'indexSelect / gather',
      (d) =>
        x(d, a)
          .indexSelect(0, x(d, torch.tensor([5, 0, 95, 3], { dtype: 'int64' })))
          .sum(1)
          .add(
            x(d, logits)
              .gather(1, x(d, target.unsqueeze(1)))
              .sum(),
          ),
      TOL.exactOp,
    );
    pair('crossEntropy (label smoothing)', (d) => nn.functional.crossEntropy(x(d, logits), x(d, target), { labelSmoothing: 0.1 }), TOL.exactOp);
    const modules = {
      conv: new nn.Conv2d(8, 16, 3, { padding: 1 }),
      bn: new nn.BatchNorm2d(8),
      ln: new nn.LayerNorm(256),
      gelu: new nn.GELU(),
      emb: new nn.Embedding(50, 12),
      pool: new nn.MaxPool2d(2),
      avg: new nn.AdaptiveAvgPool2d(1),
    };
    // the same modules on the device: same weights, moved
    const devModules = {
      conv: new nn.Conv2d(8, 16, 3, { padding: 1 }),
      bn: new nn.BatchNorm2d(8),
      ln: new nn.LayerNorm(256),
      gelu: new nn.GELU(),
      emb: new nn.Embedding(50, 12),
      pool: new nn.MaxPool2d(2),
      avg: new nn.AdaptiveAvgPool2d(1),
    };
    for (const [k, m] of Object.entries(devModules)) {
      m.loadStateDict(modules[k].stateDict());
      m.to(dev);
    }
    const mod = (d, k) => (d === 'cpu' ? modules[k] : devModules[k]);
    pair('conv2d (cuDNN: TF32)', (d) => mod(d, 'conv').forward(x(d, img)), TOL.convOp);
    pair('batchNorm2d (train mode)', (d) => mod(d, 'bn').train().forward(x(d, img)), TOL.exactOp);
    pair('layerNorm + gelu', (d) => mod(d, 'gelu').forward(mod(d, 'ln').forward(x(d, a))), TOL.exactOp);
    pair('embedding', (d) => mod(d, 'emb').forward(x(d, ids)), TOL.exactOp);
    pair(
      'maxPool2d / adaptiveAvgPool2d',
      (d) =>
        mod(d, 'avg')
          .forward(mod(d, 'pool').forward(x(d, img)))
          .flatten(),
      TOL.exactOp,
    );
    // a backward through conv, batch norm and a loss: the gradient of the conv weight
    try {
      const grads = {};
      for (const d of ['cpu', dev]) {
        const conv = mod(d, 'conv');
        conv.zeroGrad();
        const out = mod(d, 'bn').train().forward(x(d, img));
        const loss = conv.forward(out).relu().mean();
        loss.backward();
        grads[d] = conv.parameters()[0].grad;
      }
      checks.push(check(`conv + batch norm backward (weight gradient): ${dev} vs cpu`, compare(grads[dev], grads.cpu), TOL.convOp));
    } catch (e) {
      checks.push({ name: 'conv + batch norm backward', ok: false, error: e.message.split('\n')[0] });
    }
    return { checks };
  },

  async optim(o) {
    const ft = await loadFinetorch();
    const { nn, optim, io } = ft;
    const { dev } = devices(o);
    const r = io.load(join(o.dir, 'optim.pth'));
    const start = Object.fromEntries(
      Object.entries(r)
        .filter(([k]) => k.startsWith('start.'))
        .map(([k, v]) => [k.slice(6), v]),
    );
    const run = (device, stepOptions) => {
      const model = new nn.Sequential(new nn.Linear(32, 64), new nn.ReLU(), new nn.Linear(64, 10));
      model.loadStateDict(start);
      model.to(device);
      const named = model.namedParameters();
      const isHead = ([n]) => n.startsWith('2.');
      const opt = new optim.AdamW(
        [
          { params: named.filter((e) => !isHead(e)).map(([, p]) => p), lr: 1e-3 },
          { params: named.filter(isHead).map(([, p]) => p), lr: 1e-2 },
        ],
        { weightDecay: 0.01, ...stepOptions },
      );
      const xb = r.x.to(device),
        yb = r.y.to(device);
      for (let i = 0; i < o.steps; i++) {
        opt.zeroGrad();
        nn.functional.crossEntropy(model.forward(xb), yb).backward();
        opt.step();
      }
      return model.stateDict();
    };
    const checks = [];
    const against = (label, got, impl, tol) => {
      const keys = Object.keys(got);
      if (!keys.some((k) => r[`${impl}.${k}`]))
        return checks.push({
          name: `${label} vs PyTorch ${impl}`,
          ok: true,
          skipped: `PyTorch ${impl} did not run (${o.unavailable?.[impl] ?? 'unavailable'})`,
        });
      let worst = { maxAbs: 0, rel: 0 };
      for (const k of keys) {
        const c = compare(got[k], r[`${impl}.${k}`]);
        if (!(c.maxAbs <= worst.maxAbs)) worst = c;
      }
      checks.push(check(`${label} vs PyTorch AdamW ${impl} (${o.steps} steps, two groups)`, worst, tol, 'abs'));
    };
    let onDev = null;
    try {
      onDev = run(dev, {});
      // PyTorch's default: foreach on CUDA, the for-loop on the CPU (finetorch's default follows it)
      if (o.device !== 'cpu') against(`finetorch AdamW default on ${dev}`, onDev, 'foreach', TOL.optim);
      against(`finetorch AdamW default on ${dev}`, onDev, 'forloop', TOL.optim);
    } catch (e) {
      checks.push({ name: `finetorch AdamW on ${dev}`, ok: false, error: e.message.split('\n')[0] });
    }
    for (const [label, opts, impl] of [
      ['foreach', { foreach: true }, 'foreach'],
      ['fused', { fused: true }, 'fused'],
    ]) {
      try {
        const got = run(dev, opts);
        against(`finetorch AdamW ${label} on ${dev}`, got, impl, TOL.optim);
      } catch (e) {
        const msg = e.message.split('\n')[0];
        // an option this build does not have, or a kernel this libtorch/device lacks: reported, not a failure
        const unsupported = /not (available|supported)|unknown|unrecognized|needs libtorch|has no/i.test(msg);
        checks.push({
          name: `finetorch AdamW ${label} on ${dev}`,
          ok: unsupported,
          skipped: unsupported ? msg : undefined,
          error: unsupported ? undefined : msg,
        });
      }
    }
    if (onDev && o.device !== 'cpu') {
      try {
        const onCpu = run('cpu', {});
        let worst = { maxAbs: 0, rel: 0 };
        for (const k of Object.keys(onCpu)) {
          const c = compare(onDev[k], onCpu[k]);
          if (!(c.maxAbs <= worst.maxAbs)) worst = c;
        }
        checks.push(check(`finetorch AdamW ${dev} vs cpu`, worst, TOL.optim, 'abs'));
      } catch (e) {
        checks.push({ name: 'finetorch AdamW on cpu', ok: false, error: e.message.split('\n')[0] });
      }
    }
    return { checks };
  },

  async train(o) {
    const ft = await loadFinetorch();
    const { optim, io, models, trainStepAsync } = ft;
    const { dev } = devices(o);
    const r = io.load(join(o.dir, 'train.pth'));
    const model = models.load(join(o.dir, 'train-start.pth'), { arch: 'resnet18' });
    model.to(dev);
    model.train();
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const { loss, output } = await trainStepAsync({ model, optimizer, input: r.x.to(dev), target: r.y.to(dev) });
    const checks = [];
    checks.push(check(`ResNet-18 train step on ${dev}: loss vs PyTorch`, compare(loss.reshape([1]), r.loss), TOL.sameDevice));
    checks.push(check(`ResNet-18 train step on ${dev}: train-mode logits vs PyTorch`, compare(output, r.logits), TOL.sameDevice));
    let worstGrad = { maxAbs: 0, rel: 0 },
      gradName = '';
    for (const [name, p] of model.namedParameters()) {
      const want = r[`grad.${name}`];
      if (!want || !p.grad) {
        worstGrad = { maxAbs: Infinity, rel: Infinity, note: `no gradient for ${name}` };
        gradName = name;
        break;
      }
      const c = compare(p.grad, want);
      if (!(c.rel <= worstGrad.rel)) [worstGrad, gradName] = [c, name];
    }
    checks.push(check(`ResNet-18 train step on ${dev}: gradients vs PyTorch (worst: ${gradName})`, worstGrad, TOL.sameDevice));
    let worst = { maxAbs: 0, rel: 0 },
      worstName = '';
    for (const [name, t] of Object.entries(model.stateDict())) {
      const want = r[`after.${name}`];
      if (!want) continue;
      const c = compare(t, want);
      if (!(c.maxAbs <= worst.maxAbs)) [worst, worstName] = [c, name];
    }
    checks.push(check(`ResNet-18 train step on ${dev}: parameters and running stats after SGD vs PyTorch (worst: ${worstName})`, worst, 1e-4, 'abs'));
    return { checks };
  },

  async autocast(o) {
    const ft = await loadFinetorch();
    const { torch, nn, io } = ft;
    if (typeof torch.autocast !== 'function')
      return {
        checks: [{ name: 'bf16 autocast vs Python torch.autocast', ok: true, skipped: 'not available yet: this build of finetorch has no torch.autocast' }],
      };
    const { dev, acType } = devices(o);
    const r = io.load(join(o.dir, 'autocast.pth'));
    const model = new nn.Sequential(new nn.Linear(64, 128), new nn.GELU(), new nn.Linear(128, 10));
    model.loadStateDict(
      Object.fromEntries(
        Object.entries(r)
          .filter(([k]) => k.startsWith('start.'))
          .map(([k, v]) => [k.slice(6), v]),
      ),
    );
    model.to(dev);
    model.eval();
    const x = r.x.to(dev);
    const [logits, probs] = torch.noGrad(() =>
      torch.autocast(acType, { dtype: 'bfloat16' }, () => {
        const l = model.forward(x);
        return [l, l.softmax(-1)];
      }),
    );
    const checks = [
      check(`bf16 autocast MLP logits on ${dev} vs Python (dtype ${logits.dtype}, Python ${o.dtypes?.logits ?? '?'})`, compare(logits, r.logits), TOL.bf16),
      check(`bf16 autocast softmax on ${dev} vs Python (dtype ${probs.dtype}, Python ${o.dtypes?.softmax ?? '?'})`, compare(probs, r.probs), TOL.bf16),
    ];
    const pyDtype = (s) => s?.replace('torch.', '');
    if (o.dtypes) {
      checks.push({
        name: `autocast output dtypes as Python's (logits ${logits.dtype}, softmax ${probs.dtype})`,
        ok: logits.dtype === pyDtype(o.dtypes.logits) && probs.dtype === pyDtype(o.dtypes.softmax),
      });
    }
    return { checks };
  },

  async text(o) {
    const ft = await loadFinetorch();
    const { torch, io, models } = ft;
    const { dev } = devices(o);
    const checks = [];
    for (const arch of ['bert', 'roberta', 'distilbert']) {
      const folder = join(o.dir, 'text', arch);
      if (!existsSync(join(folder, 'io.pth'))) {
        checks.push({ name: `${arch} eval logits`, ok: true, skipped: 'no reference (transformers missing or failed)' });
        continue;
      }
      try {
        const r = io.load(join(folder, 'io.pth'));
        const model = models.fromPretrained(folder);
        model.eval();
        const inputs = (d) => (arch === 'distilbert' ? [r.input_ids, r.attention_mask] : [r.input_ids, r.attention_mask, r.token_type_ids]).map((t) => t.to(d));
        const onCpu = torch.noGrad(() => model.forward(...inputs('cpu')));
        checks.push(check(`${arch} (padded batch) cpu vs transformers cpu`, compare(onCpu, r.logits_cpu), 1e-4, 'abs'));
        if (o.device !== 'cpu') {
          model.to(dev);
          const onDev = torch.noGrad(() => model.forward(...inputs(dev)));
          checks.push(check(`${arch} (padded batch) ${dev} vs transformers ${dev}`, compare(onDev, r.logits_device), 1e-4, 'abs'));
          checks.push(check(`${arch} (padded batch) ${dev} vs transformers cpu`, compare(onDev, r.logits_cpu), 1e-4, 'abs'));
        }
      } catch (e) {
        checks.push({ name: `${arch} eval logits`, ok: false, error: e.message.split('\n')[0] });
      }
    }
    return { checks };
  },

  async vision(o) {
    const ft = await loadFinetorch();
    const { torch, io, models } = ft;
    const { dev, acType } = devices(o);
    const arch = o.arch;
    const checks = [];
    const r = io.load(join(o.dir, 'vision', `${arch}-io.pth`));
    const model = models.load(join(o.dir, 'vision', `${arch}.pth`), { arch });
    model.eval();
    const onCpu = torch.noGrad(() => model.forward(r.input));
    checks.push(check(`${arch} cpu vs torchvision cpu`, compare(onCpu, r.logits_cpu), TOL.sameDevice));
    if (o.device !== 'cpu') {
      model.to(dev);
      const onDev = torch.noGrad(() => model.forward(r.input.to(dev)));
      checks.push(check(`${arch} ${dev} vs torchvision ${dev}`, compare(onDev, r.logits_device), TOL.sameDevice));
      checks.push(check(`${arch} ${dev} vs torchvision cpu`, compare(onDev, r.logits_cpu), TOL.crossDevice));
    }
    if (r.logits_bf16) {
      if (typeof torch.autocast !== 'function')
        checks.push({ name: `${arch} bf16 autocast`, ok: true, skipped: 'not available yet: no torch.autocast in this build' });
      else {
        try {
          const bf = torch.noGrad(() => torch.autocast(acType, { dtype: 'bfloat16' }, () => model.forward(r.input.to(dev))));
          checks.push(check(`${arch} bf16 autocast on ${dev} vs torchvision under torch.autocast`, compare(bf, r.logits_bf16), TOL.bf16 * 2.5));
        } catch (e) {
          checks.push({ name: `${arch} bf16 autocast on ${dev}`, ok: false, error: e.message.split('\n')[0] });
        }
      }
    }
    return { checks };
  },

  /** One throughput measurement: a workload in one variant, in a fresh process (so peak memory is its own). */
  async bench(o) {
    const ft = await loadFinetorch();
    const { torch, nn, optim, models, cuda, trainStepAsync } = ft;
    const { dev, acType } = devices(o);
    const w = o.workload;
    const v = o.variant;
    const fused = v !== 'default';
    const bf16 = v.includes('bf16');
    const cl = v.endsWith('+cl');
    const feats = features(ft);
    if (bf16 && !feats.autocast) return { skipped: 'needs torch.autocast (not in this build)' };
    if (cl && !feats.channelsLast) return { skipped: 'needs model.toMemoryFormat and inputToMemoryFormat (not in this build)' };
    torch.manualSeed(0);
    const twoGroups = (model, head) => {
      const named = model.namedParameters();
      const isHead = ([n]) => n.startsWith(`${head}.`);
      try {
        return new optim.AdamW(
          [
            { params: named.filter((e) => !isHead(e)).map(([, p]) => p), lr: 1e-4 },
            { params: named.filter(isHead).map(([, p]) => p), lr: 1e-3 },
          ],
          { weightDecay: 0.01, ...(fused ? { fused: true } : {}) },
        );
      } catch (e) {
        if (fused) throw Object.assign(new Error(`fused AdamW: ${e.message.split('\n')[0]}`), { skip: true });
        throw e;
      }
    };
    let step;
    let model;
    try {
      if (w.kind === 'vision') {
        model = models[w.model]({ numClasses: 1000 });
        model.to(dev);
        model.train();
        let x = torch.randn([w.batch, 3, w.size, w.size], { device: dev });
        const y = torch.randint(0, 1000, [w.batch], { device: dev });
        if (cl) {
          model.toMemoryFormat('channelsLast');
          x = inputToMemoryFormat(ft)(x, 'channelsLast');
        }
        const optimizer = twoGroups(model, 'fc');
        const once = async () => {
          const { loss, output } = await trainStepAsync({ model, optimizer, input: x, target: y });
          loss.dispose();
          output.dispose();
        };
        step = bf16 ? () => torch.autocast(acType, { dtype: 'bfloat16' }, once) : once;
      } else {
        model = models.bert({ ...w.config, hidden_act: 'gelu' }, { numClasses: w.config.num_labels });
        model.to(dev);
        model.train();
        const ids = torch.randint(1000, w.config.vocab_size, [w.batch, w.seq], { device: dev });
        const mask = torch.ones([w.batch, w.seq], { dtype: 'int64', device: dev });
        const types = torch.zeros([w.batch, w.seq], { dtype: 'int64', device: dev });
        const y = torch.randint(0, w.config.num_labels, [w.batch], { device: dev });
        const optimizer = twoGroups(model, 'classifier');
        const forward = () => model.forwardAsync(ids, mask, types);
        step = async () => {
          optimizer.zeroGrad();
          const out = bf16 ? await torch.autocast(acType, { dtype: 'bfloat16' }, forward) : await forward();
          const loss = nn.functional.crossEntropy(out.to('float32'), y);
          await loss.backwardAsync();
          await optimizer.stepAsync();
          loss.dispose();
          out.dispose();
        };
      }
    } catch (e) {
      if (e.skip) return { skipped: e.message };
      throw e;
    }
    const sync = () => {
      if (o.device !== 'cpu') cuda.synchronize();
    };
    for (let i = 0; i < o.warmup; i++) await step();
    sync();
    const t0 = performance.now();
    for (let i = 0; i < o.steps; i++) await step();
    sync();
    const seconds = (performance.now() - t0) / 1000;
    const peakMB = o.device !== 'cpu' ? cuda.memoryStats(0).maxAllocated / 2 ** 20 : null;
    return { perSecond: (w.batch * o.steps) / seconds, peakMB, seconds };
  },
};

// =====================================================================================
// The orchestrator
// =====================================================================================

function runChild(cmd, args, { timeoutS, env = process.env, label }) {
  return new Promise((resolvePromise) => {
    const t0 = Date.now();
    let child;
    try {
      child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      return resolvePromise({ error: `${label}: could not start ${cmd}: ${e.message}` });
    }
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
      if (err.length > 200000) err = err.slice(-100000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolvePromise({ error: `${label}: could not start ${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - t0) / 1000;
      const lines = err.trim().split('\n');
      // the first line naming an error (a JS exception, a Python traceback's last line), else the last lines
      const named = lines.filter((l) => /(^|\s)(\w*Error|\w*Exception)\b|symbol lookup|Segmentation|Aborted/.test(l)).slice(-2);
      const tail = [...named, ...lines.slice(-6)].join('\n');
      if (signal === 'SIGKILL' && seconds >= timeoutS - 1) return resolvePromise({ error: `${label}: timed out after ${timeoutS} s`, stderr: tail, seconds });
      if (code !== 0) return resolvePromise({ error: `${label}: ${signal ? `killed by ${signal}` : `exit ${code}`}`, stderr: tail, seconds });
      const line = out.trim().split('\n').pop();
      try {
        resolvePromise({ result: JSON.parse(line), seconds });
      } catch {
        resolvePromise({ error: `${label}: no JSON result`, stderr: `${out.slice(-1000)}\n${tail}`, seconds });
      }
    });
  });
}

function nodeWorker(name, opts, timeoutS) {
  return runChild(process.execPath, [fileURLToPath(import.meta.url), '--worker', name, JSON.stringify(opts)], { timeoutS, label: `finetorch ${name}` });
}

function pythonTask(python, task, opts, timeoutS) {
  return runChild(python, [join(here, 'check-gpu.py'), task, JSON.stringify(opts)], { timeoutS, label: `python ${task}` });
}

const fmt = (x, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const sci = (x) => (x === null || x === undefined ? 'n/a' : !Number.isFinite(x) ? String(x) : x.toExponential(2));

async function main() {
  const { values: a } = parseArgs({
    options: {
      device: { type: 'string', default: 'cuda' },
      quick: { type: 'boolean', default: false },
      python: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      budget: { type: 'string', default: '450' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (a.help) {
    console.log(
      'usage: node scripts/check-gpu.mjs [--device cuda|cpu] [--quick] [--python PATH] [--out DIR] [--only ops,optim,train,autocast,text,vision,bench] [--budget SECONDS] [--keep]',
    );
    return 0;
  }
  const device = a.device;
  if (!['cuda', 'cpu'].includes(device)) return usage(`--device must be cuda or cpu, not '${device}'`);
  const only = a.only ? a.only.split(',') : PARTS;
  for (const p of only) if (!PARTS.includes(p)) return usage(`--only: unknown part '${p}' (one of ${PARTS.join(', ')})`);
  const budget = Number(a.budget);
  if (!(budget > 0)) return usage(`--budget must be a positive number of seconds, not '${a.budget}'`);
  if (!existsSync(join(root, 'dist', 'index.js'))) return usage(`no ${join(root, 'dist', 'index.js')}: build the package first (npm run build)`);
  const quick = a.quick;
  const python = a.python ?? process.env.FINETORCH_CHECK_PYTHON ?? 'python3';
  const outDir = resolve(a.out ?? mkdtempSync(join(tmpdir(), 'finetorch-check-gpu-')));
  mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const left = () => budget - (Date.now() - started) / 1000;
  const log = (m) => process.stderr.write(`[check:gpu ${((Date.now() - started) / 1000).toFixed(0)}s] ${m}\n`);

  const report = { startedAt: new Date(started).toISOString(), device, quick, python, parts: {}, bench: null };
  const save = () => {
    report.seconds = (Date.now() - started) / 1000;
    writeFileSync(join(outDir, 'check-gpu.json'), JSON.stringify(report, null, 2) + '\n');
  };

  // 1. finetorch: which binary, CUDA or not
  const probe = await nodeWorker('probe', {}, 120);
  if (probe.error) {
    console.error(`check:gpu: finetorch does not load: ${probe.error}\n${probe.stderr ?? ''}`);
    return 3;
  }
  const ftInfo = probe.result;
  report.finetorch = ftInfo;
  log(
    `finetorch ${ftInfo.finetorch}, binary ${ftInfo.binary} (${ftInfo.origin}), libtorch ${ftInfo.libtorch}, built with CUDA: ${ftInfo.builtWithCuda}, CUDA available: ${ftInfo.cudaAvailable} (${ftInfo.deviceCount} device(s)); features ${JSON.stringify(ftInfo.features)}`,
  );
  if (device === 'cuda' && !ftInfo.cudaAvailable) {
    const why =
      ftInfo.builtWithCuda === false
        ? `this finetorch binary (${ftInfo.binary}) was built against a CPU-only libtorch ${ftInfo.libtorch}; build against a CUDA libtorch (FINETORCH_LIBTORCH=<torch's folder> node scripts/build-native.mjs) or install the CUDA prebuilt`
        : `no CUDA device is visible to libtorch ${ftInfo.libtorch}${ftInfo.why ? ` (${ftInfo.why})` : ''} (check nvidia-smi and CUDA_VISIBLE_DEVICES)`;
    console.error(
      `check:gpu: no CUDA device: ${why}.\nOn a machine without a GPU, run the smoke test instead: node scripts/check-gpu.mjs --device cpu --quick`,
    );
    save();
    return 2;
  }

  // models and references (GBs with the VGGs) go to a temporary folder, never into --out
  const work = mkdtempSync(join(tmpdir(), 'finetorch-check-gpu-work-'));

  // 2. Python: versions
  const pv = await pythonTask(python, 'versions', {}, 180);
  const havePython = !pv.error;
  if (pv.error) log(`no usable Python torch (${python}): ${pv.error}\n${pv.stderr ?? ''}\n  -> the comparisons with PyTorch are skipped; pass --python PATH`);
  else {
    report.python = pv.result;
    log(
      `Python ${pv.result.python}: torch ${pv.result.torch}, torchvision ${pv.result.torchvision ?? 'not installed'}, transformers ${pv.result.transformers ?? 'not installed'}, CUDA ${pv.result.cuda ? `${pv.result.cudaVersion} on ${pv.result.deviceName}` : 'not available'}`,
    );
  }
  const pyDevice = havePython && (device === 'cpu' || pv.result.cuda);
  if (havePython && !pyDevice) log(`Python's torch sees no CUDA device: the comparisons with PyTorch on the device are skipped`);

  // 3. Python writes the models and references
  const visionArchs = quick
    ? ['resnet18', 'resnet50', 'vgg11_bn', 'efficientnet_b0']
    : ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'vgg11', 'vgg11_bn', 'vgg16', 'vgg16_bn', 'efficientnet_b0'];
  const optimSteps = quick ? 3 : 5;
  let prepared = {};
  const needsPrepare = only.filter((p) => ['optim', 'train', 'autocast', 'text', 'vision'].includes(p));
  if (pyDevice && needsPrepare.length) {
    log(`Python: writing models and references for ${needsPrepare.join(', ')} into ${work}`);
    const pr = await pythonTask(
      python,
      'prepare',
      {
        dir: work,
        device,
        parts: needsPrepare,
        vision: visionArchs,
        visionSize: quick ? 64 : 224,
        textSize: quick ? 'tiny' : 'small',
        optimSteps,
        trainSize: quick ? 32 : 64,
        autocast: true,
      },
      Math.max(60, Math.min(400, left())),
    );
    if (pr.error) log(`Python prepare failed: ${pr.error}\n${pr.stderr ?? ''}`);
    else prepared = pr.result;
    report.prepared = prepared;
  }
  save();

  // 4. the correctness parts, each in its own finetorch process
  const record = (part, res) => {
    report.parts[part] = res;
    save();
    const checks = res.checks ?? [];
    for (const c of checks) {
      const status = c.skipped ? 'SKIP' : c.ok ? 'ok  ' : 'FAIL';
      const fig = c.error
        ? `error: ${c.error}`
        : c.skipped
          ? c.skipped
          : c.maxAbs === undefined
            ? c.ok
              ? 'yes'
              : 'no'
            : `max abs diff ${sci(c.maxAbs)}, relative ${sci(c.rel)} (tolerance ${c.metric === 'abs' ? 'abs' : 'rel'} ${sci(c.tol)})${c.note ? `; ${c.note}` : ''}`;
      console.log(`${status} ${part}: ${c.name}: ${fig}`);
    }
    if (res.error) console.log(`FAIL ${part}: ${res.error}${res.stderr ? `\n     ${res.stderr.split('\n').join('\n     ')}` : ''}`);
    if (res.skipped) console.log(`SKIP ${part}: ${res.skipped}`);
  };
  const partRun = async (part, fn) => {
    if (!only.includes(part)) return;
    if (left() < 20) return record(part, { skipped: `time budget (--budget ${budget}) spent` });
    log(`${part}...`);
    try {
      record(part, await fn());
    } catch (e) {
      record(part, { error: e.message });
    }
  };
  const fromWorker = (w) => (w.error ? { error: w.error, stderr: w.stderr } : w.result);
  const notPrepared = (part) =>
    !havePython
      ? 'no Python torch'
      : !pyDevice
        ? 'Python torch has no CUDA'
        : (prepared[part]?.skipped ?? (prepared[part]?.error ? `Python failed: ${prepared[part].error}` : null));

  await partRun('ops', async () => fromWorker(await nodeWorker('ops', { device }, 180)));
  await partRun('optim', async () =>
    notPrepared('optim')
      ? { skipped: notPrepared('optim') }
      : fromWorker(await nodeWorker('optim', { device, dir: work, steps: optimSteps, unavailable: prepared.optim?.unavailable }, 180)),
  );
  await partRun('train', async () =>
    notPrepared('train') ? { skipped: notPrepared('train') } : fromWorker(await nodeWorker('train', { device, dir: work }, 180)),
  );
  await partRun('autocast', async () =>
    notPrepared('autocast')
      ? { skipped: notPrepared('autocast') }
      : fromWorker(await nodeWorker('autocast', { device, dir: work, dtypes: prepared.autocast?.dtypes }, 120)),
  );
  await partRun('text', async () =>
    notPrepared('text') ? { skipped: notPrepared('text') } : fromWorker(await nodeWorker('text', { device, dir: work }, 180)),
  );

  // 5. throughput, finetorch beside PyTorch
  if (only.includes('bench')) {
    if (left() < 60) report.bench = { skipped: 'time budget spent' };
    else report.bench = await bench({ device, quick, python: havePython && pyDevice ? python : null, log, left });
    save();
  }

  // 6. every vision architecture (last: the VGG checkpoints are large)
  await partRun('vision', async () => {
    if (notPrepared('vision')) return { skipped: notPrepared('vision') };
    const checks = [];
    for (const arch of visionArchs) {
      if (prepared.vision?.[arch]?.error) {
        checks.push({ name: arch, ok: false, error: `Python: ${prepared.vision[arch].error}` });
        continue;
      }
      if (left() < 15) {
        checks.push({ name: arch, ok: true, skipped: 'time budget spent' });
        continue;
      }
      const res = fromWorker(await nodeWorker('vision', { device, dir: work, arch }, Math.max(30, Math.min(180, left()))));
      if (res.error) checks.push({ name: arch, ok: false, error: `${res.error}${res.stderr ? ` (${res.stderr.split('\n')[0].trim()})` : ''}` });
      else checks.push(...res.checks);
    }
    return { checks };
  });

  // 7. summary
  const all = Object.values(report.parts).flatMap((p) => (p.error ? [{ ok: false }] : (p.checks ?? [])));
  const failed = all.filter((c) => !c.ok);
  const skipped = all.filter((c) => c.skipped).length + Object.values(report.parts).filter((p) => p.skipped).length;
  const table = report.bench?.rows ? benchTables(report) : null;
  if (table) console.log(`\n${table}`);
  const summary = `check:gpu on ${device}${quick ? ' (quick: tiny sizes, figures meaningless)' : ''}: ${all.length - failed.length - all.filter((c) => c.skipped).length} checks passed, ${failed.length} failed, ${skipped} skipped, in ${((Date.now() - started) / 1000).toFixed(0)} s`;
  console.log(`\n${summary}\nresults: ${join(outDir, 'check-gpu.json')}${table ? `, ${join(outDir, 'check-gpu.md')}` : ''}`);
  report.summary = summary;
  save();
  if (table) writeFileSync(join(outDir, 'check-gpu.md'), `${summary}\n\n${table}\n`);
  if (!a.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`models and references kept in ${work}`);
  return failed.length ? 1 : 0;
}

function usage(message) {
  console.error(`check:gpu: ${message}`);
  return 3;
}

/** Throughput: PyTorch's variants in one Python process, each finetorch variant in its own process. */
export async function bench({ device, quick, python, log, left = () => Infinity }) {
  const ws = workloads(quick);
  const plan = quick ? { warmup: 1, steps: 2 } : { warmup: 10, steps: 50 };
  const rows = [];
  let py = {};
  if (python) {
    log(`bench: PyTorch (${ws.map((w) => `${w.key}: ${w.variants.join(', ')}`).join('; ')})`);
    const r = await pythonTask(python, 'bench', { device, workloads: ws, ...plan }, Math.max(60, Math.min(300, left() - 60)));
    if (r.error) log(`bench: PyTorch failed: ${r.error}\n${r.stderr ?? ''}`);
    else py = r.result;
  }
  for (const w of ws) {
    for (const variant of w.variants) {
      let ft;
      if (left() < 20) ft = { skipped: 'time budget spent' };
      else {
        log(`bench: finetorch ${w.key} ${variant}`);
        const r = await nodeWorker('bench', { device, workload: w, variant, ...plan }, Math.max(30, Math.min(180, left())));
        ft = r.error ? { error: `${r.error}${r.stderr ? `: ${r.stderr.split('\n')[0].trim()}` : ''}` } : r.result;
      }
      const p = python ? (py[`${w.key}/${variant}`] ?? { error: 'no result' }) : { skipped: 'no Python torch' };
      rows.push({
        workload: w.key,
        title: w.title,
        unit: w.unit,
        variant,
        finetorch: ft,
        pytorch: p,
        ratio: ft.perSecond && p.perSecond ? ft.perSecond / p.perSecond : null,
      });
      log(
        `  ${w.key} ${variant}: finetorch ${ft.perSecond ? fmt(ft.perSecond) : (ft.skipped ?? ft.error)}, PyTorch ${p.perSecond ? fmt(p.perSecond) : (p.skipped ?? p.error)}`,
      );
    }
  }
  return { device, quick, plan, rows };
}

/** The throughput tables in Markdown: per variant, and in the shape of issue 14's table. */
export function benchTables(report) {
  const rows = report.bench.rows;
  const short = (text) => (text.length > 90 ? `${text.slice(0, 87)}...` : text);
  const cell = (s) => (s?.perSecond ? fmt(s.perSecond, 0) : s?.skipped ? `skipped: ${short(s.skipped)}` : s?.error ? `error: ${short(s.error)}` : 'n/a');
  const mem = (s) => (s?.peakMB ? fmt(s.peakMB, 0) : 'n/a');
  const L = [];
  const dev = report.python?.deviceName ?? report.device;
  L.push(
    `Training throughput on ${dev} (${report.device}), same run; PyTorch ${report.python?.torch ?? 'n/a'}, finetorch ${report.finetorch?.finetorch ?? ''} on libtorch ${report.finetorch?.libtorch ?? 'n/a'}. ` +
      `AdamW with two param groups, synthetic fixed batches, ${report.bench.plan.warmup} warm-up + ${report.bench.plan.steps} timed steps.`,
    '',
  );
  L.push('| workload | variant | finetorch | PyTorch | finetorch / PyTorch | peak MB finetorch | peak MB PyTorch |', '|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows)
    L.push(
      `| ${r.title}, ${r.unit} | ${VARIANT_TITLES[r.variant]} | ${cell(r.finetorch)} | ${cell(r.pytorch)} | ${r.ratio ? `${r.ratio.toFixed(2)}x` : 'n/a'} | ${mem(r.finetorch)} | ${mem(r.pytorch)} |`,
    );
  L.push('', 'As issue 14 (finetorch at its default, and at its best where it has the API):', '');
  L.push(
    '| workload | finetorch default | finetorch best | PyTorch default | PyTorch fused AdamW | + bf16 autocast | + channels_last |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  const by = (w, v, side) => rows.find((r) => r.workload === w && r.variant === v)?.[side];
  const num = (s) => (s?.perSecond ? fmt(s.perSecond, 0) : '');
  for (const w of [...new Set(rows.map((r) => r.workload))]) {
    const first = rows.find((r) => r.workload === w);
    const best = rows.filter((r) => r.workload === w && r.finetorch?.perSecond).sort((x, y) => y.finetorch.perSecond - x.finetorch.perSecond)[0];
    L.push(
      `| ${first.title}, ${first.unit} | ${num(by(w, 'default', 'finetorch'))} | ${best ? `${num(best.finetorch)} (${best.variant})` : ''} | ${num(by(w, 'default', 'pytorch'))} | ${num(by(w, 'fused', 'pytorch'))} | ${num(by(w, 'fused+bf16', 'pytorch'))} | ${num(by(w, 'fused+bf16+cl', 'pytorch'))} |`,
    );
  }
  return L.join('\n');
}

// ---- entry ----
const argv = process.argv.slice(2);
if (argv[0] === '--worker') {
  const [, name, json] = argv;
  if (!workers[name]) {
    console.error(`unknown worker ${name}`);
    process.exit(3);
  }
  const result = await workers[name](JSON.parse(json ?? '{}'));
  console.log(JSON.stringify(result));
  process.exit(0);
} else if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
