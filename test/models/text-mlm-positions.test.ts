// The masked-LM head at given positions only: forward(..., maskedPositions)
// runs the encoder on every token and the prediction head (transform,
// LayerNorm, the tied decoder) only at the flat indices given, which is all
// the loss needs. The reference is the full forward, whose logits
// test/models/text-heads.test.ts checks against transformers: at the picked
// positions the logits are the same, and so are the masked-LM loss and every
// parameter's gradient, for BERT, RoBERTa and DistilBERT. Bad positions are
// an ArgumentError naming maskedPositions.
import { describe, it, expect, beforeAll } from 'vitest';
import { torch, models, ArgumentError, type Tensor } from 'finetorch';
import { maskedLMLoss, maskedPositions } from '../../dist/pretrain/index.js';

const CONFIG = {
  vocab_size: 97,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 40,
  hidden_dropout_prob: 0,
  attention_probs_dropout_prob: 0,
  // DistilBERT's names
  dim: 16,
  n_layers: 2,
  n_heads: 2,
  hidden_dim: 32,
  dropout: 0,
  attention_dropout: 0,
  pad_token_id: 1,
};
const ARCHS = ['bert', 'roberta', 'distilbert'] as const;
const B = 3;
const T = 9;

beforeAll(() => torch.manualSeed(7));

/** Ids (no padding id inside, padding at the ends of rows 1 and 2), mask, labels with about a third of the real tokens predicted. */
function batch(seed: number) {
  let s = seed;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const lengths = [T, 6, 4];
  const ids: number[][] = [];
  const mask: number[][] = [];
  const labels: number[][] = [];
  for (let r = 0; r < B; r++) {
    ids.push([]);
    mask.push([]);
    labels.push([]);
    for (let t = 0; t < T; t++) {
      const real = t < lengths[r];
      const id = real ? 2 + Math.floor(rand() * 95) : 1;
      ids[r].push(id);
      mask[r].push(real ? 1 : 0);
      labels[r].push(real && rand() < 0.35 ? id : -100);
    }
  }
  const i64 = (v: number[][]) => torch.tensor(v, { dtype: 'int64' });
  return { ids: i64(ids), mask: i64(mask), labels: i64(labels), flatLabels: labels.flat() };
}

const maxDiff = (a: Tensor, b: Tensor) => a.sub(b).abs().max().item() as number;

describe('masked-LM head at the masked positions only (maskedPositions)', () => {
  for (const arch of ARCHS) {
    it(`${arch}: the same logits there, the same loss (1e-6) and every gradient (1e-5) as the full forward`, () => {
      const model = models[arch]({ ...CONFIG, model_type: arch }, { task: 'maskedLM' });
      model.train(); // dropout 0: train mode gives the same numbers as eval
      const { ids, mask, labels, flatLabels } = batch(11);
      const types = torch.zerosLike(ids);
      const run = (...extra: Tensor[]) => (arch === 'distilbert' ? model.forward(ids, mask, ...extra) : model.forward(ids, mask, types, ...extra));

      const positions = maskedPositions(labels);
      const want = flatLabels.flatMap((l, i) => (l === -100 ? [] : [i]));
      expect(want.length).toBeGreaterThan(3);
      expect((positions.toArray() as Array<number | bigint>).map(Number)).toEqual(want);

      // the ordinary forward: [B, T, V]
      const dense = run();
      expect(dense.shape).toEqual([B, T, 97]);
      const denseLoss = maskedLMLoss(dense, labels) as Tensor;
      denseLoss.backward();
      const denseGrads = new Map(model.namedParameters().map(([n, p]) => [n, p.grad!.clone()]));
      model.zeroGrad();

      const sparse = run(positions);
      expect(sparse.shape).toEqual([want.length, 97]);
      expect(maxDiff(sparse, dense.reshape([B * T, 97]).indexSelect(0, positions))).toBeLessThanOrEqual(1e-6);
      const sparseLoss = maskedLMLoss(sparse, labels) as Tensor;
      sparseLoss.backward();
      expect(Math.abs((sparseLoss.item() as number) - (denseLoss.item() as number))).toBeLessThanOrEqual(1e-6);
      // the cross-entropy by hand, from the dense logits: independent of both losses' code
      const rows = dense.reshape([B * T, 97]).toArray() as number[][];
      const ce = want.map((i) => Math.log(rows[i].reduce((a, v) => a + Math.exp(v), 0)) - rows[i][flatLabels[i]]);
      expect(sparseLoss.item() as number).toBeCloseTo(ce.reduce((a, v) => a + v, 0) / ce.length, 5);

      let worst = 0;
      for (const [n, p] of model.namedParameters()) {
        const d = maxDiff(p.grad!, denseGrads.get(n)!);
        expect(d, n).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, d);
      }
      expect(model.namedParameters().length).toBeGreaterThan(20);
      console.log(`${arch}: loss ${(sparseLoss.item() as number).toFixed(6)}, worst gradient difference ${worst.toExponential(2)}`);
    });
  }

  it('no masked position: logits [0, V] and a zero loss, not NaN', () => {
    const model = models.bert({ ...CONFIG, model_type: 'bert' }, { task: 'maskedLM' });
    const { ids, mask } = batch(3);
    const none = torch.full([B, T], -100, { dtype: 'int64' });
    const logits = model.forward(ids, mask, torch.zerosLike(ids), maskedPositions(none));
    expect(logits.shape).toEqual([0, 97]);
    expect((maskedLMLoss(logits, none) as Tensor).item()).toBe(0);
  });

  it('refuses positions out of range, of the wrong type or shape, and on a model without the masked-LM head', () => {
    const model = models.bert({ ...CONFIG, model_type: 'bert' }, { task: 'maskedLM' });
    const { ids, mask } = batch(5);
    const types = torch.zerosLike(ids);
    const at = (v: number[], dtype: 'int64' | 'float32' = 'int64') => torch.tensor(v, { dtype });
    expect(() => model.forward(ids, mask, types, at([0, B * T]))).toThrow(ArgumentError);
    expect(() => model.forward(ids, mask, types, at([0, B * T]))).toThrow(/masked position 27 is out of range: inputIds has 27 positions/);
    expect(() => model.forward(ids, mask, types, at([-1]))).toThrow(/masked position -1/);
    expect(() => model.forward(ids, mask, types, at([1, 2], 'float32'))).toThrow(/maskedPositions must be int64 \[N\]/);
    expect(() => model.forward(ids, mask, types, torch.tensor([[1, 2]], { dtype: 'int64' }))).toThrow(/maskedPositions must be int64 \[N\]/);
    const classifier = models.distilbert({ ...CONFIG, model_type: 'distilbert' }, { task: 'tokenClassification' });
    expect(() => classifier.forward(ids, mask, at([0]))).toThrow(/maskedPositions is for the masked-LM head; this model's task is tokenClassification/);
    // the input names fit and the trainer read: maskedPositions only where there is a masked-LM head
    expect(classifier.inputNames).toEqual(['inputIds', 'attentionMask']);
    expect(model.inputNames).toEqual(['inputIds', 'attentionMask', 'tokenTypeIds', 'maskedPositions']);
  });
});
