// Text encoders (BERT, RoBERTa, DistilBERT with sequence-classification heads)
// against reference implementations assembled from PyTorch's own modules with
// Hugging Face's names and small configs (scripts/make-text-fixtures.py).
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, optim, nn, data, type Tensor } from 'finetorch';
import { reference } from '../reference';

const ARCHS = ['bert', 'roberta', 'distilbert'] as const;
let dir = '';
beforeAll(() => {
  dir = reference(
    'make-text-fixtures.py',
    'text',
    [],
    ARCHS.flatMap((a) => [`${a}/io.safetensors`, `${a}/pytorch_model.bin`]),
  );
}, 300000);

function inputs(arch: string, r: Record<string, Tensor>): Tensor[] {
  return arch === 'distilbert' ? [r.input_ids, r.attention_mask] : [r.input_ids, r.attention_mask, r.token_type_ids];
}

describe('text encoders match the reference', () => {
  for (const arch of ARCHS) {
    for (const file of ['model.safetensors', 'pytorch_model.bin']) {
      it(`${arch} from ${file}: eval logits within 1e-5, names and order as Hugging Face`, () => {
        const model = models.load(join(dir, arch, file), { arch, config: join(dir, arch, 'config.json') });
        expect(Object.keys(model.stateDict())).toEqual(Object.keys(io.load(join(dir, arch, file))));
        model.eval();
        const r = io.load(join(dir, arch, 'io.safetensors'));
        const logits = torch.noGrad(() => model.forward(...inputs(arch, r)));
        const diff = logits.sub(r.logits).abs().max().item() as number;
        console.log(`parity ${arch} ${file}: max abs diff ${diff.toExponential(2)} (logits up to ${(r.logits.abs().max().item() as number).toFixed(3)})`);
        expect(diff).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('attention dropout is active in train mode only (SDPA gets dropout_p in training, 0 in eval)', () => {
    const config = JSON.parse(readFileSync(join(dir, 'bert', 'config.json'), 'utf8'));
    // only the attention probabilities are dropped: any difference between two calls comes from there
    // weights drawn wider than transformers' 0.02 so the dropped attention moves the logits well above the tolerance
    const m = models.bert({ ...config, initializer_range: 0.2, hidden_dropout_prob: 0, classifier_dropout: 0, attention_probs_dropout_prob: 0.5 });
    const r = io.load(join(dir, 'bert', 'io.safetensors'));
    const run = () => torch.noGrad(() => m.forward(r.input_ids, r.attention_mask, r.token_type_ids));
    m.train();
    expect(run().sub(run()).abs().max().item()).toBeGreaterThan(1e-4);
    m.eval();
    expect(run().sub(run()).abs().max().item()).toBe(0);
    const none = models.bert({ ...config, hidden_dropout_prob: 0, classifier_dropout: 0, attention_probs_dropout_prob: 0 });
    none.train();
    const a = torch.noGrad(() => none.forward(r.input_ids, r.attention_mask, r.token_type_ids));
    none.eval();
    expect(
      a
        .sub(torch.noGrad(() => none.forward(r.input_ids, r.attention_mask, r.token_type_ids)))
        .abs()
        .max()
        .item(),
    ).toBeLessThan(1e-6);
  });

  it('padding positions do not change the logits of the other tokens', () => {
    const model = models.fromPretrained(join(dir, 'bert'));
    model.eval();
    const r = io.load(join(dir, 'bert', 'io.safetensors'));
    const ids = r.input_ids.index('1:');
    const mask = r.attention_mask.index('1:');
    const a = model.forward(ids, mask);
    const changed = ids.clone();
    changed.indexPut_([0, '7:'], 42); // change only masked-out tokens
    const b = model.forward(changed, mask);
    expect(a.sub(b).abs().max().item()).toBeLessThan(1e-6);
  });
});

describe('fine-tuning entry points', () => {
  it('fromPretrained reads config.json and the weights; labels come from id2label', () => {
    const m = models.fromPretrained(join(dir, 'roberta'));
    expect(m.arch).toBe('roberta');
    expect(m.head().path).toBe('classifier.out_proj');
    expect(m.head().module.parameters()[0].shape).toEqual([3, 32]);
    expect(m.blocks().map((b) => b.name)).toEqual(['embeddings', 'layer0', 'layer1', 'head']);
    const d = models.fromPretrained(join(dir, 'distilbert'), { numClasses: 5 });
    expect(d.blocks().map((b) => b.name)).toEqual(['embeddings', 'layer0', 'layer1', 'head']);
    expect(d.head().module.parameters()[0].shape).toEqual([5, 32]);
    const b = models.fromPretrained(join(dir, 'bert'));
    expect(b.blocks().map((x) => x.name)).toEqual(['embeddings', 'layer0', 'layer1', 'pooler', 'head']);
  });

  it('a bare encoder checkpoint (BertModel keys, old position_ids buffer, MLM head) loads with a fresh classifier', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'finetorch-bare-'));
    const sd = io.load(join(dir, 'bert', 'model.safetensors'));
    const bare: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(sd)) if (k.startsWith('bert.')) bare[k.slice(5)] = v;
    bare['embeddings.position_ids'] = torch.arange(64).unsqueeze(0);
    bare['cls.predictions.bias'] = torch.zeros([100]);
    io.save(bare, join(tmp, 'model.safetensors'));
    writeFileSync(join(tmp, 'config.json'), readFileSync(join(dir, 'bert', 'config.json')));
    const m = models.fromPretrained(tmp, { numClasses: 2 });
    const got = m.stateDict();
    expect(got['bert.encoder.layer.1.output.dense.weight'].sub(sd['bert.encoder.layer.1.output.dense.weight']).abs().max().item()).toBe(0);
    expect(got['classifier.weight'].shape).toEqual([2, 32]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('trains: a few AdamW steps at 2e-5..1e-3 lower the loss on a fixed batch', async () => {
    const model = models.fromPretrained(join(dir, 'distilbert'), { numClasses: 2 });
    const r = io.load(join(dir, 'distilbert', 'io.safetensors'));
    const target = torch.tensor([0, 1]);
    const opt = new optim.AdamW([
      {
        params: model
          .blocks()
          .filter((b) => b.name !== 'head')
          .flatMap((b) => b.modules.flatMap((m) => m.parameters())),
        lr: 2e-5,
      },
      {
        params: model
          .blocks()
          .find((b) => b.name === 'head')!
          .modules.flatMap((m) => m.parameters()),
        lr: 1e-3,
      },
    ]);
    model.train();
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(model.forward(r.input_ids, r.attention_mask), target);
      loss.backward();
      opt.step();
      losses.push(loss.item() as number);
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
  });

  it('bad configs and inputs are clear errors', () => {
    const config = JSON.parse(readFileSync(join(dir, 'bert', 'config.json'), 'utf8'));
    expect(() => models.bert({ ...config, hidden_act: 'relu' })).toThrow(/hidden_act "relu" is not supported/);
    expect(() => models.bert({ ...config, hidden_size: 30 })).toThrow(/multiple of numAttentionHeads/);
    expect(() => models.bert({ ...config, vocab_size: 'many' })).toThrow(/"vocab_size" must be a number/);
    expect(() => models.load(join(dir, 'bert', 'model.safetensors'), { arch: 'bert' })).toThrow(/need \{config\}/);
    const m = models.bert(config);
    expect(() => m.forward(torch.ones([2, 100], { dtype: 'int64' }))).toThrow(
      new RegExp(`a sequence of 100 tokens is longer than the model's ${config.max_position_embeddings} positions`),
    );
    expect(() => m.forward(torch.ones([4], { dtype: 'int64' }))).toThrow(/must be \[batch, sequence\]/);
    expect(() => models.load(join(dir, 'roberta', 'model.safetensors'), { arch: 'bert', config })).toThrow(/does not fit/);
  });

  it('token ids the embedding has no row for are errors naming both numbers, not libtorch\'s "index out of range"', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'bert', 'config.json'), 'utf8'));
    const V = config.vocab_size as number;
    const m = models.bert(config);
    m.eval();
    const bad = torch.tensor([[2, 5, V, 3]], { dtype: 'int64' });
    expect(() => m.forward(bad)).toThrow(new RegExp(`token id ${V} is out of range: the model's vocab_size is ${V} \\(ids 0\\.\\.${V - 1}\\)`));
    await expect(m.forwardAsync(bad)).rejects.toThrow(new RegExp(`token id ${V} is out of range`));
    expect(() => m.forward(torch.tensor([[2, -1, 3]], { dtype: 'int64' }))).toThrow(/token id -1 is out of range/);
    expect(() => m.forward(torch.tensor([[2, 5]], { dtype: 'float32' }))).toThrow(/inputIds must be integer token ids \(int64\), got float32/);
    const ids = torch.tensor([[2, 5, 3]], { dtype: 'int64' });
    expect(() => m.forward(ids, torch.ones([1, 3], { dtype: 'int64' }), torch.tensor([[0, 0, config.type_vocab_size]], { dtype: 'int64' }))).toThrow(
      new RegExp(`token type id ${config.type_vocab_size} is out of range: the model's type_vocab_size is ${config.type_vocab_size}`),
    );
    // RoBERTa: positions start after padding_idx, so the longest sequence is max_position_embeddings - 2
    const rc = JSON.parse(readFileSync(join(dir, 'roberta', 'config.json'), 'utf8'));
    const r = models.roberta(rc);
    const longest = rc.max_position_embeddings - rc.pad_token_id - 1;
    expect(r.forward(torch.full([1, longest], 5, { dtype: 'int64' })).shape[0]).toBe(1);
    expect(() => r.forward(torch.full([1, longest + 1], 5, { dtype: 'int64' }))).toThrow(
      new RegExp(`${longest + 1} tokens is longer than the model's ${longest} positions \\(config max_position_embeddings ${rc.max_position_embeddings}\\)`),
    );
    // valid ids still give logits
    expect(m.forward(ids).shape).toEqual([1, models.bert(config).head().module.parameters()[0].shape[0]]);
  });

  it("checkVocabulary: a tokenizer with more ids than the config's vocab_size fails up front, naming both numbers", () => {
    const config = JSON.parse(readFileSync(join(dir, 'bert', 'config.json'), 'utf8'));
    const V = config.vocab_size as number;
    const tokens = (n: number) => ['[PAD]', '[UNK]', '[CLS]', '[SEP]', ...Array.from({ length: n - 4 }, (_, i) => `w${i}`)];
    expect(() => models.checkVocabulary(new data.WordPieceTokenizer(tokens(V)), config)).not.toThrow();
    expect(() => models.checkVocabulary(new data.WordPieceTokenizer(tokens(V - 10)), config)).not.toThrow();
    const big = new data.WordPieceTokenizer(tokens(V + 7));
    expect(() => models.checkVocabulary(big, config)).toThrow(new RegExp(`^config\\.json: vocab_size is ${V} but the tokenizer has ${V + 7} token ids`));
    expect(() => models.checkVocabulary(big, config, { field: 'recipe.model.config' })).toThrow(/^recipe\.model\.config: vocab_size/);
    try {
      models.checkVocabulary(big, config, { field: 'recipe.model.config' });
    } catch (err) {
      expect((err as { field?: string }).field).toBe('recipe.model.config');
    }
    // what it prevents: the model fails on the big tokenizer's last id
    const m = models.bert(config);
    expect(() => m.forward(torch.tensor([[2, V + 6, 3]], { dtype: 'int64' }))).toThrow(new RegExp(`vocab_size is ${V}`));
  });
});
