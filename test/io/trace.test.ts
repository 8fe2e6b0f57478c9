// @torch2: runs in CI's libtorch 2.x leg
// jit.trace: our modules (native architectures, a TypeScript-defined module,
// text models with an attention mask, a CRF tagger's emissions) traced into
// TorchScript files that Python's torch.jit.load reads (Debian's torch 1.13
// and, when present, .venv-torch2's torch 2.x) and runs to the same outputs
// as our model; our own jit.load too; other batch sizes and lengths.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, jit, models, exportModel, loadReport, type Module, type Tensor } from 'finetorch';
import { root } from '../reference';

interface Case {
  name: string;
  model: Module;
  inputs: Tensor[];
  /** Other inputs the traced graph must also handle (another batch size or length). */
  other: Tensor[];
}

const bertConfig = {
  vocab_size: 50,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 40,
  type_vocab_size: 2,
};
const distilConfig = { vocab_size: 50, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 32, max_position_embeddings: 40 };

/** Batch statistics that are not 0 and 1, so eval-mode BatchNorm matters. */
function randomizeBatchNorm(model: Module): void {
  const sd = model.stateDict();
  for (const [k, v] of Object.entries(sd)) {
    if (k.endsWith('running_mean')) sd[k] = torch.randn(v.shape).mul(0.1);
    if (k.endsWith('running_var')) sd[k] = torch.rand(v.shape).add(0.5);
  }
  model.loadStateDict(sd);
}

class TwoLayer extends nn.Module {
  fc1 = this.registerModule('fc1', new nn.Linear(6, 8));
  fc2 = this.registerModule('fc2', new nn.Linear(8, 3));
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x).relu().mul(2)).add(x.narrow(1, 0, 3));
  }
}

const ids = (b: number, t: number) => torch.randint(3, 50, [b, t]);
const mask = (lengths: number[], t: number) => torch.tensor(lengths.map((l) => Array.from({ length: t }, (_, k) => (k < l ? 1 : 0))));

let dir = '';
let cases: Case[] = [];
const traced = new Map<string, Module>();
const expected = new Map<string, Tensor>();
let payload: Array<{ name: string; path: string; inputs: unknown[] }> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-trace-'));
  torch.manualSeed(0);
  const resnet = models.resnet18({ width: 8, numClasses: 5 });
  randomizeBatchNorm(resnet);
  const effnet = models.efficientnetB0({ numClasses: 4 });
  randomizeBatchNorm(effnet);
  cases = [
    { name: 'resnet18', model: resnet, inputs: [torch.randn([2, 3, 32, 32])], other: [torch.randn([3, 3, 40, 40])] },
    { name: 'efficientnetB0', model: effnet, inputs: [torch.randn([1, 3, 32, 32])], other: [torch.randn([2, 3, 32, 32])] },
    { name: 'twoLayer', model: new TwoLayer(), inputs: [torch.randn([4, 6])], other: [torch.randn([2, 6])] },
    {
      name: 'bert',
      model: models.bert(bertConfig, { numClasses: 3 }),
      inputs: [ids(2, 7), mask([7, 4], 7)],
      other: [ids(3, 5), mask([5, 2, 3], 5)],
    },
    {
      name: 'roberta',
      model: models.roberta({ ...bertConfig, pad_token_id: 1 }, { numClasses: 4, task: 'tokenClassification' }),
      inputs: [ids(2, 6), mask([6, 3], 6)],
      other: [ids(1, 9), mask([9], 9)],
    },
    {
      name: 'distilbert',
      model: models.distilbert(distilConfig, { numClasses: 2 }),
      inputs: [ids(2, 7), mask([7, 5], 7)],
      other: [ids(3, 4), mask([4, 4, 1], 4)],
    },
    {
      name: 'bertTagger',
      model: models.bertTagger({ model_type: 'bert', ...bertConfig }, { numTags: 5, head: 'crf' }),
      inputs: [ids(2, 7), mask([7, 4], 7)],
      other: [ids(2, 3), mask([3, 2], 3)],
    },
  ];
  for (const c of cases) {
    c.model.eval();
    expected.set(
      c.name,
      torch.noGrad(() => c.model.forward(...c.inputs)),
    );
    const m = jit.trace(c.model, c.inputs);
    traced.set(c.name, m);
    jit.save(m, join(dir, `${c.name}.pt`));
  }
  payload = cases.map((c) => ({
    name: c.name,
    path: join(dir, `${c.name}.pt`),
    inputs: c.inputs.map((t) => ({ data: Array.from(t.dataSync() as ArrayLike<number | bigint>, Number), dtype: t.dtype, shape: t.shape })),
  }));
}, 120000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Loads every traced file with torch.jit.load and runs it on the same inputs.
const PYTHON = `
import json, sys, torch
out = {'version': torch.__version__}
for c in json.load(open(sys.argv[1])):
    m = torch.jit.load(c['path'])
    m.eval()
    ins = [torch.tensor(x['data'], dtype=getattr(torch, x['dtype'])).reshape(x['shape']) for x in c['inputs']]
    with torch.no_grad():
        y = m(*ins)
    if isinstance(y, tuple):
        y = y[0]
    out[c['name']] = {'output': y.flatten().tolist(), 'shape': list(y.shape), 'keys': list(m.state_dict().keys())}
print(json.dumps(out))
`;

interface PythonResult {
  output: number[];
  shape: number[];
  keys: string[];
}

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, k) => Math.abs(x - b[k])));

// Text models traced on libtorch 2.x record aten::scaled_dot_product_attention,
// which torch 1.13 does not have (an older PyTorch reading a newer file is not
// something PyTorch promises); the 2.x leg loads only the others in 1.13.
const tracedOn2x = Number(loadReport.libtorch.version.split('.')[0]) >= 2;
const TEXT = ['bert', 'roberta', 'distilbert', 'bertTagger'];

const torch2 = join(root, '.venv-torch2', 'bin', 'python');
const pythons = [{ label: 'Debian torch 1.13', python: '/usr/bin/python3' }, ...(existsSync(torch2) ? [{ label: '.venv-torch2', python: torch2 }] : [])];

describe('jit.trace', () => {
  for (const { label, python } of pythons) {
    it(`torch.jit.load in Python (${label}) reads every traced file: same names, same outputs within 1e-5`, () => {
      const only = tracedOn2x && python === '/usr/bin/python3' ? cases.filter((c) => !TEXT.includes(c.name)) : cases;
      writeFileSync(join(dir, 'some.json'), JSON.stringify(payload.filter((p) => only.some((c) => c.name === p.name))));
      const result = JSON.parse(execFileSync(python, ['-c', PYTHON, join(dir, 'some.json')], { encoding: 'utf8', timeout: 120000 })) as Record<
        string,
        PythonResult
      > & { version: string };
      for (const c of only) {
        const r = result[c.name];
        const want = expected.get(c.name) as Tensor;
        expect(r.shape, c.name).toEqual(want.shape);
        expect(r.keys, c.name).toEqual(Object.keys(c.model.stateDict()));
        const diff = maxDiff(r.output, Array.from(want.dataSync() as Float32Array));
        console.log(`jit.trace ${c.name} in Python torch ${result.version}: max abs diff ${diff.toExponential(2)}`);
        expect(diff, c.name).toBeLessThan(1e-5);
      }
    }, 120000);
  }

  it('the traced module shares the parameters, and takes other batch sizes and lengths (our jit.load too)', () => {
    for (const c of cases) {
      const m = traced.get(c.name) as Module;
      expect(jit.isScriptModule(m)).toBe(true);
      const ours = Object.entries(c.model.stateDict());
      const theirs = m.stateDict();
      expect(Object.keys(theirs)).toEqual(ours.map(([k]) => k));
      // the same tensors: a change to the model's weight shows in the traced module
      const [name, p] = ours[0];
      expect(theirs[name].sub(p).abs().max().item()).toBe(0);
      const loaded = jit.load(join(dir, `${c.name}.pt`));
      loaded.eval();
      torch.noGrad(() => {
        const want = c.model.forward(...c.other);
        for (const mod of [m, loaded]) {
          const got = mod.forward(...c.other);
          expect(got.shape, c.name).toEqual(want.shape);
          expect(got.sub(want).abs().max().item() as number, c.name).toBeLessThan(1e-5);
        }
      });
    }
  });

  it("exportModel to 'torchscript' and 'onnx' writes the traced files, with how to load them", async () => {
    const c = cases[0];
    const ts = await exportModel(c.model, { to: 'torchscript', out: join(dir, 'export'), exampleInput: c.inputs });
    expect(ts.files).toEqual([join(dir, 'export', 'model.pt')]);
    expect(ts.notes.join('\n')).toMatch(/torch\.jit\.load\('model\.pt'\)/);
    const back = jit.load(ts.files[0]);
    back.eval();
    expect(
      torch.noGrad(() =>
        back
          .forward(...c.inputs)
          .sub(expected.get(c.name) as Tensor)
          .abs()
          .max()
          .item(),
      ) as number,
    ).toBeLessThan(1e-5);
    const ox = await exportModel(c.model, { to: 'onnx', out: join(dir, 'export', 'r.onnx'), exampleInput: c.inputs });
    expect(ox.files).toEqual([join(dir, 'export', 'r.onnx')]);
    expect(ox.notes.join('\n')).toMatch(/onnxruntime/);
    const tagger = cases.find((k) => k.name === 'bertTagger') as Case;
    const tg = await exportModel(tagger.model, { to: 'torchscript', out: join(dir, 'export', 'tagger.pt'), exampleInput: tagger.inputs });
    expect(tg.notes.join('\n')).toMatch(/emissions .* Viterbi decoding is not traced/);
    await expect(exportModel(c.model, { to: 'torchscript', out: join(dir, 'export') })).rejects.toThrow(/give exampleInput/);
  });

  it('traces in eval mode and restores the module mode', () => {
    const m = new TwoLayer();
    m.train();
    const t = jit.trace(m, torch.randn([2, 6]));
    expect(m.training).toBe(true);
    expect(t.training).toBe(false);
  });

  it('refuses what a trace would freeze, and bad arguments, with clear errors', () => {
    const bilstm = models.bilstmCrf({ vocabSize: 20, numTags: 3, embeddingDim: 4, hiddenSize: 4 });
    expect(() => jit.trace(bilstm, [ids(2, 5).remainder(20), mask([5, 3], 5)])).toThrow(/BiLSTM packed by each sequence's length/);
    const tagger = cases.find((c) => c.name === 'bertTagger')?.model as Module;
    expect(() =>
      jit.trace(tagger, [
        ids(2, 5),
        mask([5, 3], 5),
        torch.tensor([
          [1, 2],
          [1, -1],
        ]),
      ]),
    ).toThrow(/firstPieceIndex/);
    expect(() => jit.trace(new TwoLayer(), [])).toThrow(/exampleInputs must be a Tensor or a non-empty array/);
    expect(() => jit.trace({} as Module, torch.ones([1]))).toThrow(/module must be a finetorch Module/);
    class Scalar extends nn.Module {
      forward(): Tensor {
        return 42 as unknown as Tensor;
      }
    }
    expect(() => jit.trace(new Scalar(), torch.ones([1]))).toThrow(/forward must return a Tensor or an array of Tensors/);
    // a forward that fails: the error comes through, and no trace is left running
    expect(() => jit.trace(new TwoLayer(), torch.randn([2, 5]))).toThrow();
    expect(jit.trace(new TwoLayer(), torch.randn([2, 6]))).toBeDefined();
  });
});
