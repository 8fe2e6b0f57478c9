// Text encoders against Hugging Face transformers itself (not modules assembled by
// hand): transformers builds tiny BERT/RoBERTa/DistilBERT classifiers with a fixed
// seed and save_pretrained()s them (scripts/make-transformers-fixtures.py);
// models.fromPretrained loads each folder and must give transformers' eval logits
// within 1e-5 on a padded batch, with and without padding, and (every dropout at
// 0) the train-mode loss and every parameter's gradient within 1e-4.
// On libtorch 2.x finetorch's attention is at::scaled_dot_product_attention, on
// 1.13 the explicit softmax path: each build is held to the same figures.
//
// Needs a Python with torch and transformers: FINETORCH_TRANSFORMERS_PYTHON, else
// the torch 2.x venv (.venv-torch2), else Debian's /usr/bin/python3. Without one
// the tests are skipped, unless FINETORCH_REQUIRE_TRANSFORMERS=1 (CI's torch 2.x
// leg), which makes that a failure.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, io, models, nn, loadReport, type Architecture, type Tensor } from 'finetorch';
import { cacheDir, root, transformersPython } from '../reference';

const ARCHS = ['bert', 'roberta', 'distilbert'] as const;

const python = transformersPython();

const libtorchVersion = loadReport.libtorch?.version ?? '';
const attentionPath = Number(libtorchVersion.split('.')[0]) >= 2 ? 'scaled_dot_product_attention' : 'softmax path (libtorch 1.13)';

let dir = '';
beforeAll(() => {
  if (!python) return;
  dir = join(cacheDir, 'transformers');
  const produces = ARCHS.flatMap((a) => [`${a}/io.safetensors`, `${a}-train/io.safetensors`]).concat('versions.json');
  if (produces.every((f) => existsSync(join(dir, f)))) return;
  execFileSync(python, [join(root, 'scripts', 'make-transformers-fixtures.py'), dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600000 });
}, 600000);

const maxDiff = (a: Tensor, b: Tensor) => a.sub(b).abs().max().item() as number;

function forward(model: Architecture, arch: string, ids: Tensor, mask?: Tensor, types?: Tensor): Tensor {
  if (arch === 'distilbert') return mask ? model.forward(ids, mask) : model.forward(ids);
  return mask ? model.forward(ids, mask, types!) : model.forward(ids);
}

describe.skipIf(!python)(`text encoders match transformers (${attentionPath}, libtorch ${libtorchVersion})`, () => {
  for (const arch of ARCHS) {
    it(`${arch}: eval logits on a padded batch within 1e-5 of transformers (sdpa and eager)`, () => {
      const versions = JSON.parse(readFileSync(join(dir, 'versions.json'), 'utf8'));
      const model = models.fromPretrained(join(dir, arch));
      model.eval();
      const r = io.load(join(dir, arch, 'io.safetensors'));
      const logits = torch.noGrad(() => forward(model, arch, r.input_ids, r.attention_mask, r.token_type_ids));
      const dSdpa = maxDiff(logits, r.logits_sdpa);
      const dEager = maxDiff(logits, r.logits_eager);
      console.log(
        `transformers parity ${arch} [${attentionPath}]: max abs diff ${dSdpa.toExponential(2)} vs transformers ${versions.transformers} sdpa, ` +
          `${dEager.toExponential(2)} vs eager (torch ${versions.torch}; logits up to ${(r.logits_sdpa.abs().max().item() as number).toFixed(3)})`,
      );
      expect(dSdpa).toBeLessThanOrEqual(1e-5);
      expect(dEager).toBeLessThanOrEqual(1e-5);
      // the mask matters here: ignoring it changes the padded rows' logits by far more than the tolerance
      const unmasked = torch.noGrad(() => forward(model, arch, r.input_ids, torch.onesLike(r.attention_mask), r.token_type_ids));
      expect(maxDiff(unmasked, r.logits_sdpa)).toBeGreaterThan(1e-3);
    });

    it(`${arch}: eval logits without padding (no mask, and an all-ones mask) within 1e-5`, () => {
      const model = models.fromPretrained(join(dir, arch));
      model.eval();
      const r = io.load(join(dir, arch, 'io.safetensors'));
      const noMask = torch.noGrad(() => forward(model, arch, r.full_input_ids));
      const ones = torch.noGrad(() => forward(model, arch, r.full_input_ids, torch.onesLike(r.full_input_ids), r.full_token_type_ids));
      expect(maxDiff(noMask, r.full_logits_sdpa)).toBeLessThanOrEqual(1e-5);
      expect(maxDiff(ones, r.full_logits_sdpa)).toBeLessThanOrEqual(1e-5);
    });

    it(`${arch}: train mode (dropout 0): loss within 1e-5 and every parameter's gradient within 1e-4 of transformers`, () => {
      const model = models.fromPretrained(join(dir, `${arch}-train`));
      model.train();
      const r = io.load(join(dir, `${arch}-train`, 'io.safetensors'));
      const loss = nn.functional.crossEntropy(forward(model, arch, r.input_ids, r.attention_mask, r.token_type_ids), r.labels);
      loss.backward();
      expect(Math.abs((loss.item() as number) - (r.loss.item() as number))).toBeLessThanOrEqual(1e-5);
      let worst = 0;
      let worstName = '';
      const named = model.namedParameters();
      expect(named.length).toBeGreaterThan(10);
      for (const [name, p] of named) {
        const want = r[`grad.${name}`];
        expect(want, `transformers has a gradient for ${name}`).toBeDefined();
        const got = p.grad;
        expect(got, `finetorch has a gradient for ${name}`).not.toBeNull();
        const d = maxDiff(got!, want);
        if (d > worst) [worst, worstName] = [d, name];
      }
      console.log(`transformers gradients ${arch} [${attentionPath}]: ${named.length} parameters, max abs diff ${worst.toExponential(2)} (${worstName})`);
      expect(worst).toBeLessThanOrEqual(1e-4);
    });
  }
});
