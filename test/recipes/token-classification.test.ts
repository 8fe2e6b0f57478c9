// Token classification in fit and recipes: evaluate's tagging option scores
// hand-made predictions as worked out by hand (seqeval's default and strict
// modes), decodes with the model's CRF (Viterbi) when it has one; a
// tokenClassification recipe trains a BiLSTM-CRF, reports entity F1 per
// epoch, keeps best/ by it, records what eval/predict need in run.json,
// resumes after an abort to the same end, and bad recipes name the field.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, nn, io, models, optim, fit, evaluate, parseRecipe, runRecipe, loadRun, RecipeError, type Tensor } from 'finetorch';

let dir = '';

/** Sentences of two patterns with PER (two words) and LOC entities, from a seeded generator. */
function conll(n: number, seed: number): string {
  let s = seed;
  const pick = <T>(xs: T[]) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return xs[s % xs.length];
  };
  const names = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank'];
  const places = ['Paris', 'London', 'Berlin', 'Rome', 'Oslo'];
  const verbs = ['visited', 'left', 'saw', 'liked'];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const sent =
      i % 2
        ? [
            [pick(names), 'B-PER'],
            ['Smith', 'I-PER'],
            [pick(verbs), 'O'],
            [pick(places), 'B-LOC'],
            ['.', 'O'],
          ]
        : [
            ['yesterday', 'O'],
            [pick(names), 'B-PER'],
            [pick(verbs), 'O'],
            ['the', 'O'],
            ['city', 'O'],
            ['of', 'O'],
            [pick(places), 'B-LOC'],
          ];
    out.push(...sent.map(([w, t]) => `${w} ${t}`), '');
  }
  return out.join('\n');
}

const recipe = (out: string, extra: Record<string, unknown> = {}) => ({
  task: 'tokenClassification',
  model: { arch: 'bilstmCrf', embeddingDim: 16, hiddenSize: 16 },
  data: {
    kind: 'conll',
    path: join(dir, 'train.conll'),
    valPath: join(dir, 'val.conll'),
    testPath: join(dir, 'test.conll'),
    split: { train: 1, val: 0, test: 0 },
  },
  optimizer: { lr: 0.01 },
  epochs: 4,
  batchSize: 8,
  seed: 3,
  out: join(dir, out),
  ...extra,
});

beforeAll(() => {
  torch.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), 'ft-token-recipes-'));
  writeFileSync(join(dir, 'train.conll'), conll(48, 1));
  writeFileSync(join(dir, 'val.conll'), conll(10, 2));
  writeFileSync(join(dir, 'test.conll'), conll(10, 3));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TAGS = ['O', 'B-A', 'I-A', 'B-B', 'I-B', 'B-C', 'I-C'];

/** One-hot emissions [B, W, K] of predicted tag names, zero rows past each sequence. */
function emissionsOf(pred: string[][], W: number, tags: string[]): Tensor {
  return torch.tensor(pred.map((row) => Array.from({ length: W }, (_, w) => tags.map((t) => (row[w] === t ? 1 : 0)))));
}
const targetOf = (gold: string[][], W: number, tags: string[]) =>
  torch.tensor(
    gold.map((row) => Array.from({ length: W }, (_, w) => (w < row.length ? tags.indexOf(row[w]) : -100))),
    { dtype: 'int64' },
  );

describe('evaluate with tagging', () => {
  const gold = [
    ['B-A', 'I-A', 'O', 'B-B', 'O', 'B-C'],
    ['O', 'B-C', 'I-C'],
  ];
  const pred = [
    ['I-A', 'I-A', 'O', 'B-B', 'I-B', 'B-C'],
    ['O', 'B-C', 'O'],
  ];
  const source = () => ({ batches: () => [{ input: torch.zeros([2, 1]), target: targetOf(gold, 6, TAGS) }] });
  const options = (mode?: 'default' | 'strict') => ({
    forward: async () => emissionsOf(pred, 6, TAGS),
    loss: (l: Tensor) => l.sum().mul(0),
    tagging: { tags: TAGS, scheme: 'IOB2' as const, ...(mode ? { mode } : {}) },
  });

  it('scores entities as seqeval does, worked out by hand (default mode)', async () => {
    const r = await evaluate(new nn.Linear(1, 1), source(), options());
    // true {A 0-2, B 3-4, C 5-6}, {C 1-3}; predicted (lenient) {A 0-2, B 3-5, C 5-6}, {C 1-2}: 2 of 4 right each way
    const e = r.entities!;
    expect(e.precision).toBeCloseTo(0.5, 12);
    expect(e.recall).toBeCloseTo(0.5, 12);
    expect(e.f1).toBeCloseTo(0.5, 12);
    expect(e.perType).toEqual({
      A: { precision: 1, recall: 1, f1: 1, support: 1 },
      B: { precision: 0, recall: 0, f1: 0, support: 1 },
      C: { precision: 0.5, recall: 0.5, f1: 0.5, support: 2 },
    });
    expect(e.f1Macro).toBeCloseTo((1 + 0 + 0.5) / 3, 12);
    expect(e.f1Weighted).toBeCloseTo((1 * 1 + 0 * 1 + 0.5 * 2) / 4, 12);
    // words: 4 of 6 and 2 of 3 right
    expect(r.accuracy).toBeCloseTo(6 / 9, 12);
    expect(r.samples).toBe(2);
    expect(r.rocAuc).toBeNull();
    expect(r.confusionMatrix.length).toBe(TAGS.length);
    expect(r.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(9);
  });

  it("strict IOB2 drops the prediction's I-A I-A (no B-): 1 right of 3 predicted and 4 true", async () => {
    const e = (await evaluate(new nn.Linear(1, 1), source(), options('strict'))).entities!;
    expect(e.precision).toBeCloseTo(1 / 3, 12);
    expect(e.recall).toBeCloseTo(1 / 4, 12);
    expect(e.f1).toBeCloseTo((2 * (1 / 3) * (1 / 4)) / (1 / 3 + 1 / 4), 12);
  });

  it("decodes with the model's CRF: Viterbi avoids a forbidden O -> I-X where the argmax takes it", async () => {
    const tags = ['O', 'B-X', 'I-X'];
    const model = models.bilstmCrf({ vocabSize: 4, numTags: 3, embeddingDim: 2, hiddenSize: 2 });
    const sd = model.stateDict();
    const zero = (t: Tensor) => t.mul(0);
    const transitions = torch.tensor([
      [0, 0, -1000],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    model.loadStateDict({
      ...sd,
      'crf.start_transitions': torch.tensor([0, 0, -1000]),
      'crf.end_transitions': zero(sd['crf.end_transitions']),
      'crf.transitions': transitions,
    });
    // per word: O 1.0 / B 0.9 / I 0, then I 1.0: argmax O I-X (an X entity of word 1 only), Viterbi B-X I-X (0.9 + 1 > 1 + 0)
    const emissions = torch.tensor([
      [
        [1, 0.9, 0],
        [0, 0, 1],
      ],
    ]);
    const src = { batches: () => [{ input: torch.zeros([1, 1]), target: torch.tensor([[1, 2]], { dtype: 'int64' }) }] };
    const run = (m: nn.Module) => evaluate(m, src, { forward: async () => emissions.clone(), loss: (l: Tensor) => l.sum().mul(0), tagging: { tags } });
    expect((await run(model)).entities!.f1).toBe(1);
    expect((await run(new nn.Linear(1, 1))).entities!.f1).toBe(0);
    model.dispose();
  });

  it('refuses to monitor an entity metric without tagging, and a tag list that does not fit the emissions', async () => {
    const m = new nn.Linear(1, 1);
    const optimizer = new optim.SGD(m.parameters(), { lr: 0.1 });
    await expect(fit({ model: m, optimizer, train: source(), val: source(), epochs: 1, monitor: 'entityF1' })).rejects.toThrow(
      /monitoring entityF1 needs validation data \(val\) and the tagging option/,
    );
    await expect(evaluate(m, source(), { ...options(), tagging: { tags: ['O', 'B-A'] } })).rejects.toThrow(/scores 7 tags but tagging.tags names 2/);
    await expect(evaluate(m, source(), { ...options(), tagging: { tags: [] } })).rejects.toThrow(/tagging.tags/);
  });
});

describe('recipes: task tokenClassification', () => {
  it('trains a BiLSTM-CRF: entity F1 per epoch in the events, best/ by entityF1, run.json and metrics.json for eval/predict', async () => {
    const epochs: Array<{ epoch: number; f1: number; best: boolean }> = [];
    let start: Record<string, unknown> | null = null;
    const r = await runRecipe(recipe('run-a'), {
      onEvent: (e) => {
        if (e.type === 'start') start = e as never;
        if (e.type === 'epoch') epochs.push({ epoch: e.epoch, f1: e.val!.entities!.f1, best: e.best });
      },
    });
    expect(r.status).toBe('ok');
    expect(start!.classes).toEqual(['O', 'B-LOC', 'B-PER', 'I-PER']);
    expect(start!.samples).toEqual({ train: 48, val: 10, test: 10 });
    // 24 sentences of each pattern: each has one PER and one LOC
    expect(start!.trainCounts).toEqual({ LOC: 48, PER: 48 });
    expect(epochs.length).toBe(4);
    for (const e of epochs) expect(e.f1).toBeGreaterThanOrEqual(0);
    // best/ holds the first epoch with the highest val entity F1
    const top = Math.max(...epochs.map((e) => e.f1));
    const bestEpoch = epochs.find((e) => e.f1 === top)!.epoch;
    const bestState = JSON.parse(readFileSync(join(dir, 'run-a', 'best', 'trainer.json'), 'utf8'));
    expect(bestState.best).toEqual({ epoch: bestEpoch, metric: 'entityF1', value: top });
    expect(r.fit.best).toEqual({ epoch: bestEpoch, metric: 'entityF1', value: top });
    expect(epochs.filter((e) => e.best).map((e) => e.epoch)).toContain(bestEpoch);
    // run.json: the tags, scheme and vocabulary predict needs
    const run = JSON.parse(readFileSync(join(dir, 'run-a', 'run.json'), 'utf8'));
    expect(run.classes).toEqual(['O', 'B-LOC', 'B-PER', 'I-PER']);
    expect(run.input).toMatchObject({ kind: 'tokens', tags: run.classes, scheme: 'IOB2', maxLength: 128, stride: 0 });
    expect(run.input.vocabulary.slice(0, 2)).toEqual(['<pad>', '<unk>']);
    expect(run.input.vocabulary).toContain('Smith');
    expect(run.model).toMatchObject({ arch: 'bilstmCrf', options: { numTags: 4, embeddingDim: 16, hiddenSize: 16, head: 'crf' } });
    const metrics = JSON.parse(readFileSync(join(dir, 'run-a', 'metrics.json'), 'utf8'));
    expect(metrics.test.entities.support).toBe(20);
    expect(Object.keys(metrics.test.report.types)).toEqual(['LOC', 'PER']);
    expect(r.test!.samples).toBe(10);
    r.model.dispose();
  }, 120_000);

  it("loadRun: evaluate() scores the test documents as the run's metrics.json, tag() gives spans that index their text", async () => {
    const run = loadRun(join(dir, 'run-a'));
    const metrics = JSON.parse(readFileSync(join(dir, 'run-a', 'metrics.json'), 'utf8'));
    const ev = await run.evaluate('test');
    expect(JSON.parse(JSON.stringify(ev.entities))).toEqual(metrics.test.entities);
    const texts = ['Carol Smith saw Oslo .', 'yesterday Erin left the city of Rome', ''];
    const tagged = await run.tag(texts);
    expect(tagged.map((t) => t.text)).toEqual(texts);
    for (const t of tagged) for (const s of t.spans) expect(t.text.slice(s.start, s.end)).toBe(s.text);
    expect(tagged[2].spans).toEqual([]);
    await expect(run.predict(texts)).rejects.toThrow(/holds a tagger: use loadRun\(\.\.\.\)\.tag/);
    run.dispose();
  }, 60_000);

  it('resumes after an abort to the same weights and history as a straight run', async () => {
    const controller = new AbortController();
    let steps = 0;
    const first = await runRecipe(recipe('run-abort'), {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && ++steps === 9) controller.abort(); // inside epoch 1 (6 batches an epoch)
      },
    });
    expect(first.status).toBe('interrupted');
    const resumed = await runRecipe(recipe('run-abort'), { resumeFrom: join(dir, 'run-abort') });
    const straight = await runRecipe(recipe('run-straight'));
    expect(resumed.status).toBe('ok');
    expect(resumed.fit.history).toEqual(straight.fit.history);
    const a = io.load(join(dir, 'run-abort', 'last', 'model.safetensors'));
    const b = io.load(join(dir, 'run-straight', 'last', 'model.safetensors'));
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(a)) expect(a[k].toArray(), k).toEqual(b[k].toArray());
    expect(resumed.test!.entities).toEqual(straight.test!.entities);
    for (const r of [first, resumed, straight]) r.model.dispose();
  }, 120_000);

  it('crf+focal with per-tag alpha trains; freeze leaves the embedding out of the optimizer', async () => {
    let start: { model: { parameters: number; trainable: number }; groups: Array<{ block: string }> } | null = null;
    const r = await runRecipe(
      recipe('run-focal', {
        loss: { type: 'crf+focal', focalWeight: 0.5, gamma: 2, alpha: [0.25, 1, 1, 1] },
        freeze: { blocks: 1 },
        epochs: 1,
      }),
      { onEvent: (e) => (e.type === 'start' ? (start = e as never) : undefined) },
    );
    expect(r.status).toBe('ok');
    expect(Number.isFinite(r.fit.history[0].trainLoss)).toBe(true);
    // the embedding: (vocabulary size) x 16 weights, frozen
    const vocabulary = JSON.parse(readFileSync(join(dir, 'run-focal', 'run.json'), 'utf8')).input.vocabulary.length;
    expect(start!.model.parameters - start!.model.trainable).toBe(vocabulary * 16);
    expect(start!.groups.map((g) => g.block)).not.toContain('embedding');
    r.model.dispose();
    await expect(runRecipe(recipe('run-alpha', { loss: { type: 'crf+focal', alpha: [1, 1] }, epochs: 1 }))).rejects.toThrow(
      /^recipe\.loss\.alpha: has 2 entries for 4 tags/,
    );
  }, 60_000);

  it('jsonlSpans data with a linear head and focal loss; headLr gives the head its own LR', async () => {
    const lines = readFileSync(join(dir, 'train.conll'), 'utf8')
      .split('\n\n')
      .filter((s) => s.trim())
      .map((block) => {
        const rows = block
          .split('\n')
          .filter((l) => l.trim())
          .map((l) => l.split(' '));
        const text = rows.map((r) => r[0]).join(' ');
        const spans: Array<{ start: number; end: number; label: string }> = [];
        let at = 0;
        for (const [w, t] of rows) {
          if (t.startsWith('B-')) spans.push({ start: at, end: at + w.length, label: t.slice(2) });
          else if (t.startsWith('I-')) spans[spans.length - 1].end = at + w.length;
          at += w.length + 1;
        }
        return JSON.stringify({ text, spans });
      });
    writeFileSync(join(dir, 'spans.jsonl'), lines.join('\n') + '\n');
    let groups: Array<{ block: string; lr: number }> = [];
    const r = await runRecipe(
      recipe('run-spans', {
        model: { arch: 'bilstmCrf', head: 'linear', embeddingDim: 8, hiddenSize: 8 },
        data: { kind: 'jsonlSpans', path: join(dir, 'spans.jsonl'), split: { train: 0.75, val: 0.25, test: 0 } },
        loss: { type: 'focal', gamma: 2 },
        optimizer: { lr: 0.001, headLr: 0.01 },
        epochs: 1,
      }),
      { onEvent: (e) => (e.type === 'start' ? (groups = e.groups) : undefined) },
    );
    expect(r.status).toBe('ok');
    expect(r.classes).toEqual(['O', 'B-LOC', 'B-PER', 'I-PER']);
    expect(groups.filter((g) => g.block === 'head').map((g) => g.lr)).toEqual([0.01, 0.01]);
    expect(groups.filter((g) => g.block !== 'head').every((g) => g.lr === 0.001)).toBe(true);
    expect(r.fit.history[0].val!.entities).toBeDefined();
    expect(r.test).toBeNull();
    r.model.dispose();
  }, 120_000);
});

describe('recipes: bad token-classification recipes name the field', () => {
  const issue = (r: Record<string, unknown>) => {
    try {
      parseRecipe(r);
    } catch (err) {
      expect(err).toBeInstanceOf(RecipeError);
      return (err as RecipeError).issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    }
    return 'no error';
  };
  it('refuses what does not go together', () => {
    const base = recipe('x');
    expect(issue({ ...base, task: undefined })).toMatch(/^recipe\.data\.kind: conll data has one tag per word: it needs task: tokenClassification/);
    expect(issue({ ...base, model: { arch: 'bilstmCrf', head: 'linear' }, loss: { type: 'crf' } })).toMatch(/^recipe\.loss\.type: a linear head has no CRF/);
    expect(issue({ ...base, loss: { type: 'crossEntropy' } })).toMatch(/^recipe\.loss\.type: a crf head trains its CRF on 'crf' or 'crf\+focal'/);
    expect(issue({ ...base, model: { arch: 'bilstmCrf', head: 'bilstm-crf' } })).toMatch(/^recipe\.model\.head: bilstmCrf is a BiLSTM already/);
    expect(issue({ ...base, model: { arch: 'bilstmCrf', head: 'lstm' } })).toMatch(/^recipe\.model\.head: /);
    expect(issue({ ...base, data: { kind: 'conll', path: 'a.conll', maxLength: 16, stride: 14 } })).toMatch(
      /^recipe\.data\.stride: must be below maxLength - 2 \(14\)/,
    );
    expect(issue({ ...base, data: { kind: 'csv', path: 'a.csv', tokenizer: 'v.txt' } })).toMatch(/^recipe\.data\.kind: task tokenClassification reads conll/);
    expect(issue({ ...base, data: { kind: 'conll', path: 'a.conll', scheme: 'BIOX' } })).toMatch(/^recipe\.data\.scheme: /);
    expect(issue({ ...base, earlyStopping: { metric: 'rocAuc', patience: 2 } })).toMatch(/^recipe\.earlyStopping\.metric: taggers have no ROC AUC/);
    expect(issue({ ...base, optimizer: { bottomLr: 1e-4, topLr: 1e-3, headLr: 1e-2 } })).toMatch(/recipe\.optimizer\.headLr: headLr goes with lr/);
    expect(issue({ ...base, task: 'classification', model: { arch: 'resnet18', head: 'crf' }, data: undefined })).toMatch(
      /^recipe\.model\.head: is for taggers/,
    );
    // a CRF head's loss defaults to crf
    expect(parseRecipe(base).loss.type).toBe('crf');
    expect(parseRecipe({ ...base, model: { arch: 'bilstmCrf', head: 'linear' } }).loss.type).toBe('crossEntropy');
  });

  it('at run time: an architecture that cannot tag, a tag wrong for the scheme (file and line)', async () => {
    await expect(runRecipe(recipe('bad-arch', { model: { arch: 'resnet18' } }))).rejects.toThrow(
      /recipe\.model\.arch: token classification runs on bilstmCrf .*\(got "resnet18"\)/,
    );
    await expect(runRecipe(recipe('bad-tokenizer', { model: { arch: 'bert', config: join(dir, 'nowhere.json') } }))).rejects.toThrow(
      /^recipe\.data\.tokenizer: /,
    );
    await expect(
      runRecipe(
        recipe('no-val', {
          data: { kind: 'conll', path: join(dir, 'train.conll'), split: { train: 1, val: 0, test: 0 } },
          earlyStopping: { metric: 'entityF1', patience: 2 },
        }),
      ),
    ).rejects.toThrow(/^recipe\.earlyStopping\.metric: entityF1 is measured on validation data/);
    writeFileSync(join(dir, 'bad.conll'), 'Alice B-PER\nleft O\n\nBob I-LOC\n');
    await expect(runRecipe(recipe('bad-scheme', { data: { kind: 'conll', path: join(dir, 'bad.conll') } }))).rejects.toThrow(/bad\.conll:4: .*I-LOC/);
    expect(existsSync(join(dir, 'bad-scheme', 'best'))).toBe(false);
  }, 60_000);
});
