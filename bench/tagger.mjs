// Training throughput of BERT + BiLSTM + CRF (the seed's clause tagger):
// finetorch beside the same model in PyTorch Python (bench/tagger_torch.py,
// Debian's /usr/bin/python3 with python3-torch 1.13, the libtorch finetorch
// links), on the same machine in the same run, with the same threads.
//
//   node bench/tagger.mjs                 BERT-small (4 x 256) and BERT-tiny's shape (2 x 128), 5 rounds of 4 steps
//   node bench/tagger.mjs --quick         smoke run: BERT-tiny's shape, 1 round, few steps
//   options: --threads N (default 2) --rounds N --steps N --warmup N --batch N --seq N --configs tiny,small
//            --no-padded (skip the PyTorch variant whose LSTM runs on the padded batch)
//            --default-omp (add PyTorch with libgomp's default spin-wait: several times slower on a busy machine)
//
// The model: the encoder (Hugging Face's BERT layout) -> dropout -> each
// word's first piece (packed left-aligned) -> BiLSTM (256 per direction) ->
// dropout -> Linear to 9 tags (BIO over 4 types) -> CRF NLL (mean over
// sequences); AdamW, encoder at 2e-5, head and CRF at 1e-3, weight decay 0.01
// on every parameter (both sides). The batches are the same on both sides:
// sequences of 128 pieces, batch 16, 75-100% of the pieces real, words of
// 1-3 pieces. Each side runs in its own process, alternately (A B A B), and
// we report the median step time's sequences/s and the ratios. PyTorch runs
// with the LSTM on a packed sequence (what finetorch computes: padding never
// changes a sequence) with finetorch's OpenMP spin-wait settings (with
// --default-omp also with libgomp's defaults: on a busy machine they differ
// several-fold), and with the LSTM on the padded batch as it is (no packing:
// a short sequence's reverse direction then starts in padding).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};

const CONFIGS = {
  // assets/bert-tiny-debian/config.json's shape
  tiny: { hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 512 },
  // BERT-small (Turc et al. 2019): 4 layers x 256
  small: { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 1024 },
};
const common = {
  model_type: 'bert',
  vocab_size: 8000,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.1,
};

/** A deterministic generator (mulberry32), so both sides get the same batches. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Batches of [CLS] pieces [SEP] with padding, each word's first piece, and BIO tags per word. */
function makeBatches(count, batch, seq, numTags, seed = 1) {
  const r = rng(seed);
  const out = [];
  for (let n = 0; n < count; n++) {
    const rows = [];
    for (let b = 0; b < batch; b++) {
      const length = Math.floor(seq * (0.75 + 0.25 * r()));
      const ids = new Array(seq).fill(0);
      const mask = new Array(seq).fill(0);
      ids[0] = 2;
      const first = [];
      let p = 1;
      while (p < length - 1) {
        first.push(p);
        p += 1 + Math.floor(r() * r() * 3); // mostly one piece a word
      }
      for (let i = 1; i < length - 1; i++) ids[i] = 5 + Math.floor(r() * 7990);
      ids[length - 1] = 3;
      for (let i = 0; i < length; i++) mask[i] = 1;
      rows.push({ ids, mask, first: first.filter((q) => q < length - 1), tags: first.map(() => (r() < 0.7 ? 0 : 1 + Math.floor(r() * (numTags - 1)))) });
    }
    const W = Math.max(...rows.map((row) => row.first.length));
    out.push({
      inputIds: rows.map((row) => row.ids),
      attentionMask: rows.map((row) => row.mask),
      firstPieceIndex: rows.map((row) => [...row.first, ...new Array(W - row.first.length).fill(-1)]),
      tags: rows.map((row) => [...row.tags.slice(0, row.first.length), ...new Array(W - row.first.length).fill(-100)]),
    });
  }
  return out;
}

async function finetorchSide(dataPath, o) {
  const { readFileSync } = await import('node:fs');
  const { torch, models, optim } = await import('finetorch');
  const data = JSON.parse(readFileSync(dataPath, 'utf8'));
  torch.setNumThreads(o.threads);
  torch.manualSeed(0);
  const model = models.bertTagger(data.config, { numTags: data.numTags, head: 'bilstm-crf', lstmHiddenSize: o.lstmHiddenSize });
  model.train();
  const named = model.namedParameters();
  const optimizer = new optim.AdamW(
    [
      { params: named.filter(([n]) => n.startsWith('bert.')).map(([, p]) => p), lr: 2e-5 },
      { params: named.filter(([n]) => !n.startsWith('bert.')).map(([, p]) => p), lr: 1e-3 },
    ],
    { weightDecay: 0.01 },
  );
  const batches = data.batches.map((b) => ({
    inputIds: torch.tensor(b.inputIds, { dtype: 'int64' }),
    attentionMask: torch.tensor(b.attentionMask, { dtype: 'int64' }),
    firstPieceIndex: torch.tensor(b.firstPieceIndex, { dtype: 'int64' }),
    tags: torch.tensor(b.tags, { dtype: 'int64' }),
  }));
  const times = [];
  const losses = [];
  for (let step = 0; step < o.warmup + o.steps; step++) {
    const b = batches[step % batches.length];
    const t0 = performance.now();
    const value = torch.tidy(() => {
      optimizer.zeroGrad();
      const loss = model.loss(model.forward(b.inputIds, b.attentionMask, b.firstPieceIndex), b.tags);
      loss.backward();
      optimizer.step();
      return loss.item();
    });
    losses.push(value);
    if (step >= o.warmup) times.push((performance.now() - t0) / 1000);
  }
  console.log(JSON.stringify({ side: 'finetorch', threads: torch.getNumThreads(), times, firstLoss: losses[0], lastLoss: losses.at(-1) }));
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function run(cmd, args, env = {}) {
  const p = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  if (p.status !== 0) throw new Error(`${cmd} ${args[0]} failed (${p.status}):\n${p.stderr}`);
  const line = p.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  return JSON.parse(line);
}

async function main() {
  if (flag('--side')) return finetorchSide(option('--data'), JSON.parse(option('--options')));
  const quick = flag('--quick');
  const o = {
    threads: Number(option('--threads', 2)),
    warmup: Number(option('--warmup', quick ? 2 : 1)),
    steps: Number(option('--steps', quick ? 4 : 4)),
    lstmHiddenSize: 256,
  };
  // many short rounds: on a shared machine the load drifts within minutes
  const rounds = Number(option('--rounds', quick ? 1 : 5));
  const batch = Number(option('--batch', 16));
  const seq = Number(option('--seq', 128));
  const names = option('--configs', quick ? 'tiny' : 'small,tiny').split(',');
  const numTags = 9;
  // finetorch sets libgomp's spin-wait when it loads libtorch (lib/native/loader.ts); PyTorch runs with
  // those settings (the like-for-like comparison) and with libgomp's defaults (what a user gets as is)
  const tunedOmp = { OMP_WAIT_POLICY: 'ACTIVE', GOMP_SPINCOUNT: '10000' };
  const variants = [
    { key: 'packed', lstm: 'packed', env: tunedOmp, label: "packed LSTM, finetorch's OpenMP settings" },
    ...(flag('--no-padded') ? [] : [{ key: 'padded', lstm: 'padded', env: tunedOmp, label: "LSTM on the padded batch, finetorch's OpenMP settings" }]),
    ...(flag('--default-omp') ? [{ key: 'packedDefaultOmp', lstm: 'packed', env: {}, label: "packed LSTM, libgomp's default spin-wait" }] : []),
  ];
  const cache = join(here, '.cache');
  mkdirSync(cache, { recursive: true });
  const results = [];
  console.log(
    `BERT + BiLSTM + CRF training, batch ${batch} x ${seq} pieces, ${o.threads} threads, ${o.steps} timed steps after ${o.warmup}, ${rounds} round(s); ${cpus()[0]?.model ?? ''}`,
  );
  for (const name of names) {
    const config = { ...common, ...CONFIGS[name] };
    const dataPath = join(cache, `tagger-${name}.json`);
    writeFileSync(dataPath, JSON.stringify({ config, numTags, batches: makeBatches(4, batch, seq, numTags) }));
    const sides = Object.fromEntries(['finetorch', ...variants.map((v) => v.key)].map((k) => [k, []]));
    const seqPerSec = (times) => batch / median(times);
    for (let r = 0; r < rounds; r++) {
      const ft = run(process.execPath, [fileURLToPath(import.meta.url), '--side', '--data', dataPath, '--options', JSON.stringify(o)]);
      sides.finetorch.push(...ft.times);
      const parts = [`finetorch ${seqPerSec(ft.times).toFixed(1)} seq/s (loss ${ft.firstLoss.toFixed(2)} -> ${ft.lastLoss.toFixed(2)})`];
      for (const v of variants) {
        const pt = run('/usr/bin/python3', [join(here, 'tagger_torch.py'), dataPath, JSON.stringify({ ...o, torchLstm: v.lstm })], v.env);
        sides[v.key].push(...pt.times);
        parts.push(`PyTorch ${pt.torch} ${v.label} ${seqPerSec(pt.times).toFixed(1)} seq/s (loss ${pt.firstLoss.toFixed(2)} -> ${pt.lastLoss.toFixed(2)})`);
      }
      console.log(`  ${name} round ${r + 1} (load average ${loadavg()[0].toFixed(1)}): ${parts.join('; ')}`);
    }
    const ft = seqPerSec(sides.finetorch);
    const pytorch = variants.map((v) => ({ variant: v.key, label: v.label, seqPerSec: seqPerSec(sides[v.key]), ratio: ft / seqPerSec(sides[v.key]) }));
    results.push({ config: name, ...CONFIGS[name], batch, seq, threads: o.threads, finetorchSeqPerSec: ft, pytorch, loadAverage: loadavg()[0] });
    console.log(`${name} (${CONFIGS[name].num_hidden_layers} x ${CONFIGS[name].hidden_size}): finetorch ${ft.toFixed(1)} seq/s`);
    for (const p of pytorch) console.log(`  PyTorch, ${p.label}: ${p.seqPerSec.toFixed(1)} seq/s; finetorch / PyTorch ${p.ratio.toFixed(2)}`);
  }
  // a full run's figures are kept with the repository; --quick ones stay in the cache
  const out = quick ? join(cache, 'tagger-results.json') : join(here, 'results', 'tagger.json');
  const machine = { cpu: cpus()[0]?.model ?? '', cores: cpus().length, note: 'load average per config: other processes shared the CPUs' };
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, options: { ...o, rounds }, results }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
