// One rank of the distributed tests (test/distributed/ddp.test.ts): joins the
// process group from torchrun's environment variables, runs the task named in
// argv[2] and writes what the test checks as JSON to the file argv[3].
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { distributed, fit, nn, optim, torch, TensorLoader } from 'finetorch';

const [taskList, out] = process.argv.slice(2);
// several tasks in one launch ('collectives+unused') save process start-ups
const tasks = new Set(taskList.split('+'));
const task = taskList;
await distributed.initProcessGroup({ timeoutMs: task === 'dead-peer' ? 4000 : 20000 });
const rank = distributed.getRank();
const worldSize = distributed.getWorldSize();
const result = { rank, worldSize };

/** The test's model: three Linear layers (the test builds the same one as its reference). */
function makeModel() {
  return new nn.Sequential(new nn.Linear(6, 8), new nn.ReLU(), new nn.Linear(8, 8), new nn.ReLU(), new nn.Linear(8, 3));
}

if (tasks.has('collectives')) {
  torch.manualSeed(1000 + rank);
  const x = torch.randn([3, 4]);
  result.input = x.toArray();
  for (const op of ['sum', 'avg', 'max', 'min']) {
    const t = x.clone();
    await distributed.allReduce(t, { op });
    result[op] = t.toArray();
  }
  const b = x.clone();
  await distributed.broadcast(b, { src: worldSize - 1 });
  result.broadcast = b.toArray();
  result.allGather = (await distributed.allGather(x)).map((t) => t.toArray());
  await distributed.barrier();
} else if (task === 'sgd' || task === 'adamw') {
  // every rank starts from different weights: DDP must broadcast rank 0's
  torch.manualSeed(100 + rank);
  const model = makeModel();
  const ddp = new distributed.DistributedDataParallel(model);
  await ddp.ready;
  let opt;
  // a frozen first block and two param groups, for both optimizers
  for (const p of model.children()[0].parameters()) p.requiresGrad = false;
  if (task === 'sgd')
    opt = new optim.SGD([{ params: model.children()[2].parameters() }, { params: model.children()[4].parameters(), lr: 0.05, weightDecay: 0.01 }], {
      lr: 0.1,
      momentum: 0.9,
    });
  else {
    opt = new optim.AdamW(
      [
        { params: model.children()[2].parameters(), lr: 0.01, weightDecay: 0.1 },
        { params: model.children()[4].parameters(), lr: 0.005 },
      ],
      {},
    );
  }
  torch.manualSeed(0);
  const x = torch.randn([20, 6]);
  const y = torch.randint(0, 3, [20], { dtype: 'int64' });
  const data = distributed.shard(new TensorLoader(x, y, { batchSize: 3, shuffle: true, seed: 7 }));
  result.batches = data.length;
  for (let epoch = 0; epoch < 2; epoch++) {
    for (const { input, target } of data.batches(epoch)) {
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(ddp.forward(input), target);
      // sgd: the all-reduces overlap the backward; adamw: all of them in syncGradients
      if (task === 'sgd') ddp.reducer.prepare();
      loss.backward();
      await ddp.syncGradients();
      await opt.stepAsync();
    }
  }
  result.params = Object.fromEntries(model.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
}
if (task === 'fit' || task === 'fit-ddp') {
  // fit({ distributed: true }), or fit of a DistributedDataParallel, shards train and averages gradients itself
  torch.manualSeed(100 + rank);
  const model = makeModel();
  const trained = task === 'fit' ? model : new distributed.DistributedDataParallel(model);
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  torch.manualSeed(0);
  const x = torch.randn([20, 6]);
  const y = torch.randint(0, 3, [20], { dtype: 'int64' });
  const train = new TensorLoader(x, y, { batchSize: 3, shuffle: true, seed: 7 });
  let steps = 0;
  const r = await fit({ model: trained, optimizer, train, epochs: 2, distributed: task === 'fit', onEvent: (e) => (steps += e.type === 'step' ? 1 : 0) });
  result.batches = steps / 2;
  result.trainLosses = r.history.map((h) => h.trainLoss);
  result.nativeSteps = r.nativeSteps;
  result.params = Object.fromEntries(model.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
}
if (tasks.has('unused')) {
  // a is used on every rank, b only on rank 1, c on none: nothing hangs, b's gradient is averaged on both, c keeps none
  const model = new nn.ModuleDict({ a: new nn.Linear(4, 2), b: new nn.Linear(4, 2), c: new nn.Linear(4, 2) });
  const ddp = new distributed.DistributedDataParallel(model, { bucketCapMb: 0.00005 });
  await ddp.ready;
  torch.manualSeed(rank);
  const x = torch.randn([5, 4]);
  let out = model.get('a').forward(x);
  if (rank === 1) out = out.add(model.get('b').forward(x));
  out.pow(2).sum().backward();
  const local = (name) => {
    const g = model.get(name).parameters()[0].grad;
    return g ? Array.from(g.dataSync()) : null;
  };
  result.before = { a: local('a'), b: local('b'), c: local('c') };
  // flags ride in the last bucket and come back summed over the ranks
  result.flags = await ddp.syncGradients([rank, 1, 0.5]);
  result.after = { a: local('a'), b: local('b'), c: local('c') };
}
if (tasks.has('reducer')) {
  // GradientReducer with buckets of ~1.1 KiB (3, then 4 with the first block), a frozen first block, two micro-steps with prepare()
  // only before the second; then the block is unfrozen (the reducer rebuilds) and one plain backward follows
  torch.manualSeed(5);
  const model = new nn.Sequential(
    new nn.Linear(6, 16),
    new nn.ReLU(),
    new nn.Linear(16, 16),
    new nn.ReLU(),
    new nn.Linear(16, 16),
    new nn.ReLU(),
    new nn.Linear(16, 3),
  );
  const first = model.children()[0].parameters();
  for (const p of first) p.requiresGrad = false;
  const reducer = new distributed.GradientReducer(model, { bucketCapMb: 1.1 / 1024 });
  torch.manualSeed(50 + rank);
  const grads = () => model.namedParameters().map(([k, p]) => [k, p.grad ? Array.from(p.grad.dataSync()) : null]);
  const backward = async (sync) => {
    const loss = model
      .forward(torch.randn([4, 6]))
      .pow(2)
      .mean();
    if (sync) loss.backward();
    else await loss.backwardAsync();
  };
  await backward(false);
  reducer.prepare();
  await backward(false);
  const accumulated = { before: Object.fromEntries(grads()) };
  accumulated.flags = await reducer.finish([rank + 1, 10]);
  accumulated.stats = reducer.stats;
  accumulated.after = Object.fromEntries(grads());
  for (const p of model.parameters()) p.grad = null;
  for (const p of first) p.requiresGrad = true;
  reducer.prepare();
  await backward(true);
  const unfrozen = { before: Object.fromEntries(grads()) };
  unfrozen.flags = await reducer.finish();
  unfrozen.stats = reducer.stats;
  unfrozen.after = Object.fromEntries(grads());
  // misuse: bad flags; two backward passes after one prepare() (the second would change gradients already sent)
  const errors = [];
  await reducer.finish(['one']).catch((e) => errors.push(e.message));
  reducer.prepare();
  await backward(false);
  await backward(false);
  await reducer.finish().catch((e) => errors.push(e.message));
  reducer.dispose();
  await reducer.finish().catch((e) => errors.push(e.message));
  result.reducer = { accumulated, unfrozen, errors };
}
if (task === 'fit-resume') {
  // one epoch with checkpoints (rank 0 writes them), then fresh models and optimizers resume the second from last/
  const checkpointDir = join(dirname(out), `checkpoints-${process.env.MASTER_PORT}`);
  const run = async (epochs, resumeFrom) => {
    torch.manualSeed(100 + rank + (resumeFrom ? 50 : 0)); // the resumed models start elsewhere: the checkpoint must set them
    const model = makeModel();
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    torch.manualSeed(0);
    const x = torch.randn([20, 6]);
    const y = torch.randint(0, 3, [20], { dtype: 'int64' });
    const train = new TensorLoader(x, y, { batchSize: 3, shuffle: true, seed: 7 });
    await fit({ model, optimizer, train, epochs, distributed: true, checkpointDir, resumeFrom, restoreBest: false });
    return model;
  };
  await run(1);
  await distributed.barrier(); // rank 0 has written last/
  result.wrote = existsSync(join(checkpointDir, 'last'));
  const model = await run(2, join(checkpointDir, 'last'));
  result.params = Object.fromEntries(model.namedParameters().map(([k, p]) => [k, Array.from(p.dataSync())]));
}
if (task === 'dead-peer') {
  // the last rank leaves without a word; the others' next collective must fail, not hang
  if (rank === worldSize - 1) {
    writeFileSync(out, JSON.stringify(result));
    process.exit(0);
  }
  const started = Date.now();
  try {
    await distributed.allReduce(torch.ones([4]));
    result.error = null;
  } catch (e) {
    result.error = String(e?.message ?? e);
  }
  result.ms = Date.now() - started;
}
writeFileSync(out, JSON.stringify(result));
distributed.destroyProcessGroup();
