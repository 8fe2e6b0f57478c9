// @torch2: runs in CI's libtorch 2.x leg
// onnx.export: our converter from traced aten graphs to ONNX (opset 17),
// checked by the onnx package's checker and run by onnxruntime (from
// .venv-torch2) to the same outputs as our model, at the traced batch size
// and (dynamicBatch) another; unsupported ops name the op and the module.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, onnx, models, type Module, type Tensor } from 'finetorch';
import { transformersPython } from '../reference';

interface Case {
  name: string;
  model: Module;
  inputs: Tensor[];
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

function randomizeBatchNorm(model: Module): void {
  const sd = model.stateDict();
  for (const [k, v] of Object.entries(sd)) {
    if (k.endsWith('running_mean')) sd[k] = torch.randn(v.shape).mul(0.1);
    if (k.endsWith('running_var')) sd[k] = torch.rand(v.shape).add(0.5);
  }
  model.loadStateDict(sd);
}

const ids = (b: number, t: number) => torch.randint(3, 50, [b, t]);
const mask = (lengths: number[], t: number) => torch.tensor(lengths.map((l) => Array.from({ length: t }, (_, k) => (k < l ? 1 : 0))));

const python = transformersPython('onnx, onnxruntime, numpy');
let dir = '';
let cases: Case[] = [];
const ops = new Map<string, Record<string, number>>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ft-onnx-'));
  torch.manualSeed(1);
  const resnet = models.resnet18({ width: 8, numClasses: 5 });
  randomizeBatchNorm(resnet);
  const effnet = models.efficientnetB0({ numClasses: 4 });
  randomizeBatchNorm(effnet);
  cases = [
    { name: 'resnet18', model: resnet, inputs: [torch.randn([2, 3, 32, 32])], other: [torch.randn([3, 3, 32, 32])] },
    { name: 'efficientnetB0', model: effnet, inputs: [torch.randn([1, 3, 32, 32])], other: [torch.randn([2, 3, 32, 32])] },
    { name: 'bert', model: models.bert(bertConfig, { numClasses: 3 }), inputs: [ids(2, 7), mask([7, 4], 7)], other: [ids(3, 7), mask([7, 2, 3], 7)] },
    {
      name: 'roberta',
      model: models.roberta({ ...bertConfig, pad_token_id: 1 }, { numClasses: 4, task: 'tokenClassification' }),
      inputs: [ids(2, 6), mask([6, 3], 6)],
      other: [ids(1, 6), mask([4], 6)],
    },
    {
      name: 'distilbert',
      model: models.distilbert({ vocab_size: 50, dim: 16, n_layers: 2, n_heads: 2, hidden_dim: 32, max_position_embeddings: 40 }, { numClasses: 2 }),
      inputs: [ids(2, 7), mask([7, 5], 7)],
      other: [ids(4, 7), mask([7, 5, 1, 6], 7)],
    },
    {
      name: 'bertTagger',
      model: models.bertTagger({ model_type: 'bert', ...bertConfig }, { numTags: 5, head: 'crf' }),
      inputs: [ids(2, 7), mask([7, 4], 7)],
      other: [ids(3, 7), mask([7, 1, 5], 7)],
    },
  ];
  for (const c of cases) {
    c.model.eval();
    const r = onnx.export(c.model, c.inputs, join(dir, `${c.name}.onnx`), { dynamicBatch: true });
    ops.set(c.name, r.ops);
  }
  const asJson = (ts: Tensor[]) => ts.map((t) => ({ data: Array.from(t.dataSync() as ArrayLike<number | bigint>, Number), dtype: t.dtype, shape: t.shape }));
  writeFileSync(
    join(dir, 'cases.json'),
    JSON.stringify(cases.map((c) => ({ name: c.name, path: join(dir, `${c.name}.onnx`), inputs: asJson(c.inputs), other: asJson(c.other) }))),
  );
}, 120000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// onnx.checker (full_check: with shape inference) and onnxruntime on both input sets.
const PYTHON = `
import json, sys, numpy as np, onnx, onnxruntime as ort
out = {'versions': 'onnx %s, onnxruntime %s' % (onnx.__version__, ort.__version__)}
for c in json.load(open(sys.argv[1])):
    model = onnx.load(c['path'])
    onnx.checker.check_model(model, full_check=True)
    s = ort.InferenceSession(c['path'], providers=['CPUExecutionProvider'])
    res = {'initializers': [t.name for t in model.graph.initializer], 'inputs': [i.name for i in s.get_inputs()],
           'opset': model.opset_import[0].version, 'batch': s.get_inputs()[0].shape[0]}
    for key in ('inputs', 'other'):
        feeds = {i.name: np.array(x['data'], dtype=x['dtype']).reshape(x['shape']) for i, x in zip(s.get_inputs(), c[key])}
        y = s.run(None, feeds)[0]
        res[key + 'Output'] = {'output': y.flatten().tolist(), 'shape': list(y.shape)}
    out[c['name']] = res
print(json.dumps(out))
`;

const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, k) => Math.abs(x - b[k])));

describe('onnx.export', () => {
  it.skipIf(!python)(
    'onnx.checker accepts every model; onnxruntime gives our outputs within 1e-4, also at another batch size',
    () => {
      const result = JSON.parse(execFileSync(python as string, ['-c', PYTHON, join(dir, 'cases.json')], { encoding: 'utf8', timeout: 120000 }));
      for (const c of cases) {
        const r = result[c.name];
        expect(r.opset).toBe(17);
        expect(r.batch).toBe('batch');
        expect(r.inputs).toEqual(c.model.inputNames ? c.model.inputNames.slice(0, c.inputs.length) : ['input']);
        // parameters are initializers under their dotted names
        const params = c.model.namedParameters().map(([n]) => n);
        expect(r.initializers.filter((n: string) => params.includes(n)).length, c.name).toBeGreaterThan(params.length / 2);
        torch.noGrad(() => {
          for (const [key, inputs] of [
            ['inputsOutput', c.inputs],
            ['otherOutput', c.other],
          ] as const) {
            const want = c.model.forward(...inputs);
            expect(r[key].shape, c.name).toEqual(want.shape);
            const diff = maxDiff(r[key].output, Array.from(want.dataSync() as Float32Array));
            console.log(
              `onnx.export ${c.name} (${key === 'inputsOutput' ? 'traced batch' : 'other batch'}) in ${result.versions}: max abs diff ${diff.toExponential(2)}`,
            );
            expect(diff, c.name).toBeLessThan(1e-4);
          }
        });
      }
      expect(Object.keys(ops.get('resnet18') ?? {})).toEqual(expect.arrayContaining(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'GlobalAveragePool']));
      expect(Object.keys(ops.get('bert') ?? {})).toEqual(expect.arrayContaining(['Gather', 'LayerNormalization', 'Softmax', 'Erf']));
    },
    120000,
  );

  it('writes a protobuf ModelProto (IR version 8, producer finetorch)', () => {
    const bytes = readFileSync(join(dir, 'resnet18.onnx'));
    // field 1 (ir_version, varint) = 8, then field 2 (producer_name) = "finetorch"
    expect([...bytes.subarray(0, 2)]).toEqual([0x08, 0x08]);
    expect(bytes.subarray(4, 13).toString()).toBe('finetorch');
  });

  it('an op without a conversion is an error naming the aten op and the module; bad options are refused', () => {
    class Odd extends nn.Module {
      fc = this.registerModule('fc', new nn.Linear(4, 2));
      forward(x: Tensor): Tensor {
        return this.fc.forward(x).abs();
      }
    }
    const path = join(dir, 'odd.onnx');
    expect(() => onnx.export(new Odd(), torch.randn([2, 4]), path)).toThrow(/aten::abs \(in the root module\): no ONNX conversion/);
    const model = cases[0].model;
    expect(() => onnx.export(model, cases[0].inputs, path, { opsetVersion: 13 })).toThrow(/opsetVersion 13 is not supported/);
    expect(() => onnx.export(model, cases[0].inputs, path, { inputNames: ['a', 'b'] })).toThrow(/inputNames must be 1 distinct/);
    expect(() => onnx.export(model, cases[0].inputs, '')).toThrow(/path must be a non-empty string/);
    expect(() => onnx.export(model, cases[0].inputs, join(dir, 'missing', 'm.onnx'))).toThrow(/the folder .*missing does not exist/);
  });
});
