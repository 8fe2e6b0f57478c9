// One rank of test/distributed/faults.test.ts: joins the process group from
// torchrun's environment variables, runs fit in the ways the test names in
// argv[2] and writes what the test checks as JSON to argv[3]. argv[4] is a
// folder for checkpoints shared by both ranks (rank 0 writes them).
//   kill:  3 epochs with a checkpoint per epoch; rank 1 kills itself (SIGKILL) in epoch 2
//   stops: an uninterrupted run (inputs and BatchNorm buffers recorded), a resume from the
//          kill run's epoch 1, a non-finite loss on rank 1 only, the signal on rank 0 only
//          (and a resume from its last/), a callback's stop on rank 1 only, and gradient
//          accumulation over 2 micro-batches with a frozen block against one process
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distributed, fit, nn, optim, permutation, torch, TensorLoader } from 'finetorch';

const [task, out, dir] = process.argv.slice(2);
await distributed.initProcessGroup({ timeoutMs: 3000 });
const rank = distributed.getRank();
const result = { rank };
const EPOCHS = 3;

/** BatchNorm first, so its running statistics are those of the input batches the test sees. */
function makeModel(seed) {
  torch.manualSeed(seed);
  return new nn.Sequential(new nn.BatchNorm1d(6), new nn.Linear(6, 8), new nn.ReLU(), new nn.Linear(8, 3));
}

/** 24 samples in batches of 3: 4 steps per rank and epoch. */
function data() {
  torch.manualSeed(0);
  const x = torch.randn([24, 6]).mul(2).add(0.5);
  const y = torch.randint(0, 3, [24], { dtype: 'int64' });
  return new TensorLoader(x, y, { batchSize: 3, shuffle: true, seed: 7 });
}

/** Without BatchNorm, the first block frozen: one process on the ranks' batches together computes the same step. */
function makeMlp(seed) {
  torch.manualSeed(seed);
  const model = new nn.Sequential(new nn.Linear(6, 8), new nn.ReLU(), new nn.Linear(8, 8), new nn.ReLU(), new nn.Linear(8, 3));
  for (const p of model.children()[0].parameters()) p.requiresGrad = false;
  return model;
}

/** fit on a fresh model (every rank starts elsewhere: rank 0's weights must win); `extra` overrides the options. */
async function train(extra = {}) {
  const model = makeModel(100 + rank + (extra.resumeFrom ? 50 : 0));
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  let steps = 0;
  const onEvent = (e) => {
    if (e.type === 'step') steps++;
  };
  const fitResult = await fit({ model, optimizer, train: data(), epochs: EPOCHS, distributed: true, restoreBest: false, onEvent, ...extra });
  return { model, fit: fitResult, steps };
}

const stateOf = (model) => Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, Array.from(t.dataSync(), Number)]));
const errorOf = async (fn) => {
  try {
    await fn();
    return null;
  } catch (e) {
    return { name: e.name, message: e.message, step: e.step ?? null, epoch: e.epoch ?? null };
  }
};

if (task === 'kill') {
  const started = Date.now();
  result.error = await errorOf(() =>
    train({
      checkpointDir: join(dir, 'kill'),
      callbacks: [
        {
          onStepEnd: (ctx) => {
            if (rank === 1 && ctx.epoch === 1 && ctx.batch === 2) process.kill(process.pid, 'SIGKILL');
          },
        },
      ],
    }),
  );
  result.ms = Date.now() - started;
}

if (task === 'stops') {
  // uninterrupted, with the inputs of every training forward
  const inputs = [];
  const forward = (model, input) => {
    inputs.push(input.toArray());
    return model.forwardAsync(input);
  };
  const full = await train({ forward });
  result.full = { state: stateOf(full.model), history: full.fit.history.map((h) => h.trainLoss), steps: full.steps };
  result.inputs = inputs;

  // resume from the kill run's checkpoint (epoch 1 of 3)
  const resumed = await train({ resumeFrom: join(dir, 'kill', 'last') });
  result.resumed = { state: stateOf(resumed.model), history: resumed.fit.history.map((h) => h.trainLoss) };

  // a non-finite loss on rank 1 only, at its 6th step (epoch 2)
  let calls = 0;
  const loss = (logits, target) => {
    const l = nn.functional.crossEntropy(logits, target);
    return rank === 1 && ++calls === 6 ? l.mul(Number.NaN) : l;
  };
  let divergedSteps = 0;
  const startedDiverged = Date.now();
  result.diverged = await errorOf(() => train({ loss, onEvent: (e) => (divergedSteps += e.type === 'step' ? 1 : 0) }));
  result.divergedSteps = divergedSteps;
  result.divergedMs = Date.now() - startedDiverged;

  // the signal on rank 0 only, after its 3rd step of epoch 2; rank 0 writes last/, both resume from it
  const controller = new AbortController();
  const signalDir = join(dir, 'signal');
  const events = [];
  const interrupted = await train({
    signal: controller.signal,
    checkpointDir: signalDir,
    onEvent: (e) => {
      if (e.type === 'step' || e.type === 'interrupted') events.push({ type: e.type, epoch: e.epoch, step: e.step });
    },
    callbacks: [
      {
        onStepEnd: (ctx) => {
          if (rank === 0 && ctx.epoch === 1 && ctx.batch === 2) controller.abort();
        },
      },
    ],
  });
  result.interrupted = { interrupted: interrupted.fit.interrupted, epochs: interrupted.fit.epochs, events };
  await distributed.barrier(); // rank 0 has written last/
  const afterSignal = await train({ resumeFrom: join(signalDir, 'last') });
  result.afterSignal = { state: stateOf(afterSignal.model), history: afterSignal.fit.history.map((h) => h.trainLoss) };

  // a callback's stop on rank 1 only, in epoch 1
  const stopped = await train({
    callbacks: [
      {
        onStepEnd: (ctx) => {
          if (rank === 1 && ctx.epoch === 0 && ctx.batch === 1) ctx.stop('rank 1 has seen enough');
        },
      },
    ],
  });
  result.stopped = { epochs: stopped.fit.epochs, stopped: stopped.fit.stopped, steps: stopped.steps };
}

if (task === 'stops') {
  // gradient accumulation over 2 micro-batches: the reducer is armed before the second backward only
  const model = makeMlp(100 + rank);
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  await fit({ model, optimizer, train: data(), epochs: 2, distributed: true, gradientAccumulationSteps: 2 });
  result.accumulated = Object.fromEntries(model.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
  if (rank === 0) {
    // one process, a plain loop: micro-batch m of a step is the union of both ranks' m-th batches (DistributedSampler's split)
    const reference = makeMlp(100);
    const opt = new optim.SGD(reference.parameters(), { lr: 0.1, momentum: 0.9 });
    torch.manualSeed(0);
    const x = torch.randn([24, 6]).mul(2).add(0.5);
    const y = torch.randint(0, 3, [24], { dtype: 'int64' });
    for (let epoch = 0; epoch < 2; epoch++) {
      const order = permutation(24, 7 * 100003 + epoch);
      const perRank = [0, 1].map((r) => order.filter((_, i) => i % 2 === r));
      for (let step = 0; step < 2; step++) {
        opt.zeroGrad();
        for (const m of [2 * step, 2 * step + 1]) {
          const idx = torch.tensor(
            perRank.flatMap((list) => list.slice(3 * m, 3 * m + 3)),
            { dtype: 'int64' },
          );
          nn.functional
            .crossEntropy(reference.forward(x.indexSelect(0, idx)), y.indexSelect(0, idx))
            .div(2)
            .backward();
        }
        opt.step();
      }
    }
    result.reference = Object.fromEntries(reference.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
  }
}

writeFileSync(out, JSON.stringify(result));
distributed.destroyProcessGroup();
