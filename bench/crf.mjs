// nn.CRF against pytorch-crf's algorithm in PyTorch Python, on the same libtorch.
//   node bench/crf.mjs [--quick] [--threads N] [--rounds N]
// Batch 32, 64 tags, length 256, sequence lengths varied from 129 to 256 (the
// issue's sizes); --quick: batch 8, 16 tags, length 32, for a smoke test.
// Measures (1) forward + backward of the summed log-likelihood and (2)
// Viterbi decoding to lists of tags. Each side runs in its own process
// (bench/crf.mjs --side ft, bench/crf_torch.py on Debian's /usr/bin/python3),
// alternating A B A B for --rounds rounds, same thread count; the medians of
// the per-round medians are reported, with the ratio PyTorch time /
// finetorch time (> 1: finetorch is faster). Both sides seed libtorch's
// generator alike, so they draw the same emissions and tags: the
// log-likelihoods and the Viterbi paths (a checksum) are compared as a check
// that both did the same work. Threads: 1 by default (the development
// machine's 2 cores are shared; OpenMP's barriers suffer most from that).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const option = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};

if (option('--side') === 'ft') {
  await finetorchSide(JSON.parse(option('--options')));
} else {
  drive();
}

// A position-weighted sum of every tag of every path (the same in crf_torch.py).
function checksum(paths) {
  let sum = 0;
  paths.forEach((p, b) => p.forEach((tag, t) => (sum = (sum + (b + 1) * (t + 1) * (tag + 1)) % 1000000007)));
  return sum;
}

function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

async function finetorchSide(o) {
  const { torch, nn } = await import('../dist/index.js');
  torch.setNumThreads(o.threads);
  const { length: T, batch: B, tags: K } = o;
  torch.manualSeed(o.seed);
  const emissions = torch.randn([T, B, K]).requiresGrad_();
  const tags = torch.randint(0, K, [T, B], { dtype: 'int64' });
  const lengths = torch.tensor(o.lengths, { dtype: 'int64' });
  const mask = torch.arange(T, undefined, 1, { dtype: 'int64' }).unsqueeze(1).lt(lengths.unsqueeze(0));
  const crf = new nn.CRF(K);

  const trainStep = () =>
    torch.tidy(() => {
      emissions.grad = null;
      crf.zeroGrad();
      const llh = crf.forward(emissions, tags, mask);
      llh.neg().backward();
      return llh.item();
    });
  const timed = (fn, reps) => {
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      fn();
      times.push(performance.now() - t0);
    }
    return times;
  };
  const llh = trainStep();
  timed(trainStep, o.warmup);
  const trainMs = timed(trainStep, o.reps);
  const paths = crf.decode(emissions, mask);
  timed(() => crf.decode(emissions, mask), o.warmup);
  const decodeMs = timed(() => crf.decode(emissions, mask), o.reps);
  console.log(
    JSON.stringify({
      side: 'finetorch',
      threads: torch.getNumThreads(),
      trainMs: median(trainMs),
      decodeMs: median(decodeMs),
      llh,
      pathLengths: paths.map((p) => p.length),
      pathChecksum: checksum(paths),
    }),
  );
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function drive() {
  const quick = argv.includes('--quick');
  const threads = Number(option('--threads', '1'));
  const rounds = Number(option('--rounds', quick ? '1' : '3'));
  const [batch, tags, length] = quick ? [8, 16, 32] : [32, 64, 256];
  // varied lengths: the longest is the full length, the shortest about half
  const lengths = Array.from({ length: batch }, (_, b) => (b === 0 ? length : length - ((b * 37) % Math.ceil(length / 2))));
  const o = { batch, tags, length, lengths, threads, seed: 7, warmup: quick ? 1 : 3, reps: quick ? 3 : 10 };
  const json = JSON.stringify(o);
  console.log(
    `CRF benchmark: batch ${batch}, ${tags} tags, length ${length} (lengths ${Math.min(...lengths)}..${Math.max(...lengths)}), ${threads} threads, ${rounds} round(s) of ${o.reps} timed steps`,
  );
  const sides = { finetorch: [], pytorch: [] };
  for (let r = 0; r < rounds; r++) {
    sides.finetorch.push(run(process.execPath, [join(here, 'crf.mjs'), '--side', 'ft', '--options', json]));
    sides.pytorch.push(run('/usr/bin/python3', [join(here, 'crf_torch.py'), json]));
  }
  const ft = sides.finetorch[0];
  const pt = sides.pytorch[0];
  const same = JSON.stringify(ft.pathLengths) === JSON.stringify(lengths) && JSON.stringify(pt.pathLengths) === JSON.stringify(lengths);
  const samePaths = ft.pathChecksum === pt.pathChecksum;
  console.log(
    `check: log-likelihood finetorch ${ft.llh.toFixed(4)}, PyTorch ${pt.llh.toFixed(4)}; path lengths as the mask: ${same}; same Viterbi paths: ${samePaths}`,
  );
  const rows = [];
  for (const [what, key, unit] of [
    ['forward + backward', 'trainMs', 'sequences/s'],
    ['Viterbi decode', 'decodeMs', 'sequences/s'],
  ]) {
    const f = median(sides.finetorch.map((s) => s[key]));
    const p = median(sides.pytorch.map((s) => s[key]));
    rows.push({ what, finetorchMs: f, pytorchMs: p, finetorchPerS: (batch * 1000) / f, pytorchPerS: (batch * 1000) / p, speedup: p / f });
    console.log(
      `${what.padEnd(20)} finetorch ${f.toFixed(1).padStart(8)} ms (${((batch * 1000) / f).toFixed(0)} ${unit})   PyTorch ${p.toFixed(1).padStart(8)} ms (${((batch * 1000) / p).toFixed(0)} ${unit})   finetorch ${(p / f).toFixed(2)}x`,
    );
  }
  console.log(JSON.stringify({ options: o, check: { llh: [ft.llh, pt.llh], sameLengths: same, samePaths }, rows }));
}
