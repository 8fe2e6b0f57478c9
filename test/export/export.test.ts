// exportModel on trained runs, against the libraries the files are for: a
// ResNet-18 run exported as .pth loads into torchvision's resnet18 (Debian's
// torch 1.13) and gives our logits; a tiny BERT run exported as a Hugging
// Face folder loads with transformers' AutoModelForSequenceClassification and
// AutoTokenizer (.venv-torch2) and gives our logits on transformers' own
// tokenization. Errors name what was wrong.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, jit, models, exportModel, loadRun, runRecipe, type Tensor } from 'finetorch';
import { transformersPython } from '../reference';

let dir = '';
let visionRun = '';
let textRun = '';
let visionSteps = 0;

const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'good', 'great', 'nice', 'bad', 'awful', 'sad', 'the', 'film', 'was', 'very'];

beforeAll(async () => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'finetorch-export-'));
  // torchvision's resnet18 as it is (width 64, 3 channels, ImageNet stem), trained a little on 28x28 Fashion-MNIST
  visionRun = join(dir, 'vision');
  await runRecipe(
    {
      model: { arch: 'resnet18' },
      data: { kind: 'fashionMnist', classes: [0, 1, 7], perClass: 8, testPerClass: 2, val: 0.25, channels: 3 },
      epochs: 1,
      batchSize: 8,
      optimizer: { lr: 1e-3 },
      seed: 1,
    },
    { out: visionRun, onEvent: (e) => void (e.type === 'step' && visionSteps++) },
  );
  // a 1-layer BERT on a 15-word vocabulary
  writeFileSync(join(dir, 'vocab.txt'), VOCAB.join('\n') + '\n');
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'bert',
      vocab_size: VOCAB.length,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 16,
      type_vocab_size: 2,
    }),
  );
  const rows = Array.from(
    { length: 24 },
    (_, i) => `${i % 2 ? 'pos' : 'neg'},the film was ${['very ', ''][i % 2]}${(i % 2 ? ['good', 'great', 'nice'] : ['bad', 'awful', 'sad'])[i % 3]}`,
  );
  writeFileSync(join(dir, 'reviews.csv'), 'label,text\n' + rows.join('\n') + '\n');
  textRun = join(dir, 'text');
  await runRecipe(
    {
      model: { arch: 'bert', config: 'config.json' },
      data: { kind: 'csv', path: 'reviews.csv', tokenizer: 'vocab.txt', maxLength: 8, split: { train: 0.5, val: 0.25, test: 0.25 } },
      epochs: 1,
      batchSize: 8,
      optimizer: { lr: 1e-2 },
      seed: 1,
    },
    { out: textRun, baseDir: dir },
  );
}, 120000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Same dtype, shape and values. */
function same(a: Tensor, b: Tensor): boolean {
  const va = Array.from(a.dataSync() as ArrayLike<number | bigint>);
  const vb = Array.from(b.dataSync() as ArrayLike<number | bigint>);
  return a.dtype === b.dtype && a.shape.join() === b.shape.join() && va.every((v, i) => v === vb[i]);
}

/** A fixed input, the same numbers in both programs. */
function fixedImage(): Tensor {
  const n = 2 * 3 * 28 * 28;
  return torch.tensor(
    Float64Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 2),
    { dtype: 'float32', shape: [2, 3, 28, 28] },
  );
}

describe('exportModel to pth', () => {
  it("a ResNet-18 run loads into torchvision's resnet18 (torch 1.13, weights_only) and gives our logits", async () => {
    const out = join(dir, 'out', 'resnet.pth');
    const r = await exportModel(visionRun, { to: 'pth', out });
    expect(r).toMatchObject({ format: 'pth', files: [out] });
    expect(r.notes.join('\n')).toMatch(/torchvision\.models\.resnet18\(num_classes=3\)/);
    const x = fixedImage();
    const inputFile = join(dir, 'input.pth');
    io.save({ x }, inputFile);
    const py = `
import json, sys, torch, torchvision
sd = torch.load(sys.argv[1], weights_only=True)
m = torchvision.models.resnet18(num_classes=3)
m.load_state_dict(sd)  # strict: every name and shape must be torchvision's
m.eval()
x = torch.load(sys.argv[2], weights_only=True)['x']
with torch.no_grad():
    logits = m(x)
print(json.dumps({'logits': logits.tolist(), 'tracked': {k: v.item() for k, v in sd.items() if k.endswith('num_batches_tracked')}, 'n': len(sd)}))
`;
    const want = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py, out, inputFile], { encoding: 'utf8', timeout: 120000 }));
    // every BatchNorm's step counter is there, counting the training steps
    expect(Object.keys(want.tracked)).toHaveLength(20);
    expect(new Set(Object.values(want.tracked))).toEqual(new Set([visionSteps]));
    const run = loadRun(visionRun);
    const ours = torch.noGrad(() => run.model.forward(x)).toArray() as number[][];
    run.dispose();
    let diff = 0;
    want.logits.forEach((row: number[], i: number) => row.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - ours[i][j])))));
    expect(diff, `max abs diff ${diff}`).toBeLessThan(1e-5);
  });

  it("a Module: its state dict into a folder as model.pth; the note says when the shapes are not torchvision's", async () => {
    const m = models.resnet18({ numClasses: 4, width: 8 });
    const r = await exportModel(m, { to: 'pth', out: join(dir, 'out', 'module') });
    expect(r.files).toEqual([join(dir, 'out', 'module', 'model.pth')]);
    expect(r.notes.join('\n')).toMatch(/width\/inChannels\/smallStem differ from torchvision's/);
    const back = io.load(r.files[0]);
    const sd = m.stateDict();
    expect(Object.keys(back)).toEqual(Object.keys(sd));
    expect(same(back['fc.weight'], sd['fc.weight'])).toBe(true);
    m.dispose();
  });
});

describe('exportModel to safetensors', () => {
  it("a run's weights by default into <run>/export/model.safetensors, the same tensors as the checkpoint, and self-describing", async () => {
    const r = await exportModel(join(visionRun, 'best'), { to: 'safetensors' });
    expect(r.files).toEqual([join(visionRun, 'export', 'model.safetensors')]);
    const ck = io.load(join(visionRun, 'best', 'model.safetensors'));
    const back = io.load(r.files[0]);
    expect(Object.keys(back).sort()).toEqual(Object.keys(ck).sort());
    for (const k of Object.keys(ck)) expect(same(back[k], ck[k]), k).toBe(true);
    expect(models.savedArchitecture(r.files[0])).toMatchObject({ arch: 'resnet18', options: { numClasses: 3 } });
  });
});

describe('exportModel to hf', () => {
  const python = transformersPython('torch, transformers');
  it.skipIf(!python)("a BERT run: transformers loads the folder (model and tokenizer) and gives our logits; the labels are the run's classes", async () => {
    const out = join(dir, 'out', 'hf');
    const r = await exportModel(textRun, { to: 'hf', out });
    expect(r.files.map((f) => f.slice(out.length + 1)).sort()).toEqual(['config.json', 'model.safetensors', 'vocab.txt']);
    const py = `
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
m.eval()
enc = tok(['the film was very good', 'the film was awful'], padding='max_length', max_length=8, truncation=True, return_tensors='pt')
with torch.no_grad():
    logits = m(**enc).logits
print(json.dumps({'ids': enc['input_ids'].tolist(), 'mask': enc['attention_mask'].tolist(), 'types': enc['token_type_ids'].tolist(),
                  'logits': logits.tolist(), 'labels': m.config.id2label}))
`;
    const want = JSON.parse(execFileSync(python!, ['-c', py, out], { encoding: 'utf8', timeout: 180000 }));
    expect(want.labels).toEqual({ 0: 'neg', 1: 'pos' });
    // the copied vocabulary tokenizes as ours: [CLS] the film was very good [SEP] [PAD]
    expect(want.ids[0]).toEqual([2, 11, 12, 13, 14, 5, 3, 0]);
    const ids = (k: string) => torch.tensor(want[k] as number[][], { dtype: 'int64' });
    const run = loadRun(textRun);
    const ours = torch.noGrad(() => run.model.forward(ids('ids'), ids('mask'), ids('types'))).toArray() as number[][];
    run.dispose();
    let diff = 0;
    want.logits.forEach((row: number[], i: number) => row.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - ours[i][j])))));
    expect(diff, `max abs diff ${diff}`).toBeLessThan(1e-5);
  });
});

describe('exportModel to torchscript and onnx from a run', () => {
  it("traces with an input shaped as the run's data: libtorch runs the TorchScript file to our logits; ONNX takes the text model's inputs", async () => {
    const ts = await exportModel(visionRun, { to: 'torchscript' });
    expect(ts.files).toEqual([join(visionRun, 'export', 'model.pt')]);
    const x = fixedImage();
    const scripted = jit.load(ts.files[0]);
    const run = loadRun(visionRun);
    const [a, b] = torch.noGrad(() => [scripted.forward(x), run.model.forward(x)]);
    const diff = a.sub(b).abs().max().item() as number;
    expect(diff, `max abs diff ${diff}`).toBeLessThan(1e-5);
    run.dispose();
    scripted.dispose();
    const ox = await exportModel(textRun, { to: 'onnx' });
    expect(ox.files).toEqual([join(textRun, 'export', 'model.onnx')]);
    expect(ox.notes.join('\n')).toMatch(/'inputIds': \.\.\., 'attentionMask': \.\.\., 'tokenTypeIds'/);
  });
});

describe('exportModel errors', () => {
  it('hf for a vision model says it is for text models', async () => {
    await expect(exportModel(visionRun, { to: 'hf', out: join(dir, 'out', 'nope') })).rejects.toThrow(/'hf' .*for the text models .*resnet18 is not one/);
    expect(existsSync(join(dir, 'out', 'nope'))).toBe(false);
  });

  it('a bad format, a missing source, a Module without out, out over the checkpoint itself', async () => {
    await expect(exportModel(visionRun, { to: 'keras' as never })).rejects.toThrow(/to must be one of pth, safetensors, hf, torchscript, onnx; got "keras"/);
    await expect(exportModel(join(dir, 'nowhere'), { to: 'pth' })).rejects.toThrow(/nowhere.*does not exist/);
    const m = models.resnet18({ numClasses: 2, width: 8 });
    await expect(exportModel(m, { to: 'pth' })).rejects.toThrow(/out is needed when the source is a Module/);
    m.dispose();
    const weights = join(visionRun, 'best', 'model.safetensors');
    const before = readFileSync(weights);
    await expect(exportModel(visionRun, { to: 'safetensors', out: weights })).rejects.toThrow(/is the checkpoint being exported/);
    expect(readFileSync(weights).equals(before)).toBe(true);
  });

  it('a bare weights file converts to pth, but hf needs to know the model', async () => {
    const bare = join(dir, 'bare.safetensors');
    io.save({ w: torch.ones([2, 2]) }, bare);
    const r = await exportModel(bare, { to: 'pth', out: join(dir, 'out', 'bare.pt') });
    expect(Object.keys(io.load(r.files[0]))).toEqual(['w']);
    await expect(exportModel(bare, { to: 'hf', out: join(dir, 'out', 'bare-hf') })).rejects.toThrow(/does not say which model it holds/);
  });
});
