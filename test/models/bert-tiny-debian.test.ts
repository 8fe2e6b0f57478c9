// The small pretrained BERT shipped in assets/bert-tiny-debian (made by
// scripts/make-text-checkpoint.mjs): its files are the ones its provenance
// names; Hugging Face transformers loads the folder as BertForMaskedLM with no
// missing or unexpected keys, its tokenizer gives our token ids and its model
// our logits (within 1e-5); and it has learnt to use context: on the package
// descriptions it was not trained on (data.debian's held-out split), its
// cross-entropy at masked tokens is well below what token frequencies alone
// give, and an untrained model of the same shape is above it.
//
// The transformers check needs a Python with torch and transformers (as
// text-heads.test.ts); without one it is skipped unless
// FINETORCH_REQUIRE_TRANSFORMERS=1.
import { describe, it, expect, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch, io, models, data, type Architecture, type Tensor } from 'finetorch';
import { cacheDir, root, transformersPython } from '../reference';

const dir = join(root, 'assets', 'bert-tiny-debian');
const provenance = JSON.parse(readFileSync(join(dir, 'provenance.json'), 'utf8'));
const scratch = mkdtempSync(join(tmpdir(), 'finetorch-bert-tiny-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const python = transformersPython();

// English of another kind than the training text, for the tokenizer comparison
const gpl = readFileSync('/usr/share/common-licenses/GPL-3', 'utf8');
const preamble = gpl.slice(gpl.indexOf('Preamble'), gpl.indexOf('TERMS AND CONDITIONS')).replace(/\s+/g, ' ').trim();

describe('assets/bert-tiny-debian', () => {
  it('holds the files its provenance names, with their sha256', () => {
    for (const [name, sha] of Object.entries(provenance.files as Record<string, string>)) {
      const got = createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest('hex');
      expect(got, name).toBe(sha);
    }
    expect(provenance.data.documentsUsed).toBeGreaterThan(50000);
  });

  it.skipIf(!python)(
    'loads in transformers as BertForMaskedLM: same token ids from its tokenizer, logits within 1e-5',
    () => {
      const sentences = [
        preamble.slice(0, 400),
        'A library of image codecs, with command-line tools to convert between formats.',
        'naïve façade—Ünïcode & punctuation!',
      ];
      const tokenizer = data.loadTokenizer(dir);
      const enc = tokenizer.encodeBatch(sentences, { maxLength: 128, truncation: true, padding: 'longest' });
      const inputs = join(scratch, 'inputs.safetensors');
      io.save({ input_ids: enc.inputIds, attention_mask: enc.attentionMask, token_type_ids: enc.tokenTypeIds! }, inputs);
      const out = join(scratch, 'logits.safetensors');
      const program = `
import json, sys, torch, transformers
from safetensors.torch import load_file, save_file
transformers.utils.logging.set_verbosity_error()
folder, inputs, out, sentences = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
tok = transformers.AutoTokenizer.from_pretrained(folder)
ids = tok(sentences, truncation=True, max_length=128, padding='longest')['input_ids']
model, info = transformers.AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
model.eval()
b = load_file(inputs)
with torch.no_grad():
    logits = model(input_ids=b['input_ids'], attention_mask=b['attention_mask'], token_type_ids=b['token_type_ids']).logits
save_file({'logits': logits.contiguous()}, out)
print(json.dumps({'class': type(model).__name__, 'missing': sorted(info['missing_keys']), 'unexpected': sorted(info['unexpected_keys']), 'ids': ids}))
`;
      const stdout = execFileSync(python!, ['-c', program, dir, inputs, out, JSON.stringify(sentences)], { encoding: 'utf8', timeout: 300000 });
      const r = JSON.parse(stdout.trim().split('\n').pop()!);
      expect(r.class).toBe('BertForMaskedLM');
      expect(r.missing).toEqual([]);
      expect(r.unexpected).toEqual([]);
      expect(r.ids).toEqual(enc.inputIds.toArray());
      const model = models.fromPretrained(dir);
      model.eval();
      const logits = torch.noGrad(() => model.forward(enc.inputIds, enc.attentionMask, enc.tokenTypeIds!));
      const theirs = io.load(out).logits;
      // padding positions' logits are not compared: models differ only in what they do not attend to
      const mask = enc.attentionMask.unsqueeze(2).float();
      const diff = logits.sub(theirs).abs().mul(mask).max().item() as number;
      expect(diff).toBeLessThanOrEqual(1e-5);
      model.dispose();
    },
    300000,
  );

  /**
   * Cross-entropy at masked positions of held-out text: every 7th token
   * masked in turn (seven passes over 126-token windows), against the
   * context-free prediction from token frequencies counted in training text.
   */
  function maskedLoss(model: Architecture, ids: number[], ids2: { mask: number; cls: number; sep: number }, unigram: (id: number) => number) {
    const T = 126;
    const K = 7;
    const windows: number[][] = [];
    for (let i = 0; i + T <= ids.length && windows.length < 200; i += T) windows.push(ids.slice(i, i + T));
    let model_ = 0;
    let context = 0;
    let total = 0;
    for (let offset = 0; offset < K; offset++)
      for (let b = 0; b < windows.length; b += 10) {
        const ws = windows.slice(b, b + 10);
        const input = torch.tensor(
          ws.map((w) => [ids2.cls, ...w.map((id, j) => (j % K === offset ? ids2.mask : id)), ids2.sep]),
          { dtype: 'int64' },
        );
        const targets = torch.tensor(
          ws.map((w) => [ids2.cls, ...w, ids2.sep]),
          { dtype: 'int64' },
        );
        const logits = torch.noGrad(() => model.forward(input)) as Tensor;
        const lsm = logits.logSoftmax(2);
        const picked = lsm.gather(2, targets.unsqueeze(2)).squeeze(2).toArray() as number[][];
        ws.forEach((w, r) =>
          w.forEach((id, j) => {
            if (j % K !== offset) return;
            total++;
            model_ -= picked[r][j + 1];
            context -= unigram(id);
          }),
        );
        for (const t of [input, targets, logits, lsm]) t.dispose();
      }
    return { model: model_ / total, unigram: context / total, tokens: total };
  }

  it('predicts masked tokens of held-out package descriptions better than token frequencies can, and an untrained model does not', () => {
    const tokenizer = data.loadTokenizer(dir);
    const corpus = data.debian.debianDescriptions({ cacheDir: join(cacheDir, 'debian') });
    // held out by a hash of each text, so documents held out when the checkpoint was made still are (the index changes over time)
    expect(corpus.heldOut.length).toBeGreaterThan(500);
    const counts = new Map<number, number>();
    let n = 0;
    for (const d of corpus.train.slice(0, 20000))
      for (const id of tokenizer.encode(d.text).ids.slice(1, -1)) {
        counts.set(id, (counts.get(id) ?? 0) + 1);
        n++;
      }
    const V = tokenizer.vocabSize;
    const unigram = (id: number) => Math.log(((counts.get(id) ?? 0) + 0.5) / (n + 0.5 * V)); // add-half smoothing
    const ids = corpus.heldOut.flatMap((d) => tokenizer.encode(d.text).ids.slice(1, -1));
    const [mask, cls, sep] = ['[MASK]', '[CLS]', '[SEP]'].map((t) => tokenizer.tokenToId(t)!);
    const pretrained = models.fromPretrained(dir);
    pretrained.eval();
    const trained = maskedLoss(pretrained, ids, { mask, cls, sep }, unigram);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    torch.manualSeed(0);
    const untrained = models.bert(config, { task: 'maskedLM' });
    untrained.eval();
    const random = maskedLoss(untrained, ids, { mask, cls, sep }, unigram);
    console.log(
      `bert-tiny-debian on ${trained.tokens} masked held-out tokens: cross-entropy ${trained.model.toFixed(3)}, token frequencies ${trained.unigram.toFixed(3)}, untrained ${random.model.toFixed(3)}`,
    );
    expect(trained.model).toBeLessThan(trained.unigram - 0.3);
    expect(random.model).toBeGreaterThan(trained.unigram);
    pretrained.dispose();
    untrained.dispose();
  }, 120000);
});
