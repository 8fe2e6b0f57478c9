// Synchronous use of what a pending async task owns, and dispose while tasks
// run. Run in a child process by concurrency.test.ts (with --expose-gc), so a
// crash fails the test instead of killing the runner. Prints one JSON line:
//   sync:    for each case, the error message a synchronous call threw while
//            a task was pending (null: it did not throw), and whether the
//            same call worked once the task settled;
//   dispose: for each case, the largest difference from a reference result
//            computed the same way with nothing disposed early.
import { torch, nn, optim, trainStepAsync } from '../../dist/index.js';

const rounds = Number(process.argv[2] ?? 50);
const flat = (t) => Array.from(t.dataSync(), Number);
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), a.length === b.length ? 0 : Infinity);

function model(seed) {
  torch.manualSeed(seed);
  return new nn.Sequential(new nn.Linear(64, 256), new nn.ReLU(), new nn.Linear(256, 3));
}
const x = torch.randn([512, 64]);
const y = torch.randint(0, 3, [512]);

// ---- synchronous calls while a task is pending
const sync = {};
async function whilePending(name, start, call) {
  const pending = start();
  let error = null;
  try {
    call();
  } catch (e) {
    error = e instanceof Error ? e.message : `non-Error: ${String(e)}`;
  }
  await pending;
  let afterwards = true;
  try {
    call();
  } catch (e) {
    afterwards = `${e}`;
  }
  sync[name] = { error, afterwards };
}

{
  const m = model(1);
  const opt = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
  const [w] = m.parameters();
  const fwd = () => m.forwardAsync(x);
  await whilePending('forwardAsync / forward', fwd, () => m.forward(x));
  await whilePending('forwardAsync / train', fwd, () => m.train());
  await whilePending('forwardAsync / parameter add_', fwd, () => torch.noGrad(() => w.add_(0)));
  await whilePending('forwardAsync / parameter read', fwd, () => w.toArray());
  await whilePending('forwardAsync / zeroGrad', fwd, () => opt.zeroGrad());
  await whilePending('forwardAsync / loadStateDict', fwd, () => m.loadStateDict(m.stateDict()));
  await whilePending('forwardAsync / to', fwd, () => m.to('float32'));

  const loss = () => nn.functional.crossEntropy(m.forward(x), y);
  const bwd = () => loss().backwardAsync();
  await whilePending('backwardAsync / module zeroGrad', bwd, () => m.zeroGrad());
  await whilePending('backwardAsync / grad read', bwd, () => w.grad);
  const second = loss(); // a graph over the same parameters, made before the task
  await whilePending('backwardAsync / second backward', bwd, () => second.backward(undefined, { retainGraph: true }));
  await whilePending('backwardAsync / optimizer step', bwd, () => opt.step());

  loss().backward();
  const step = () => opt.stepAsync();
  await whilePending('stepAsync / zeroGrad', step, () => opt.zeroGrad({ setToNone: false }));
  await whilePending('stepAsync / step', step, () => opt.step());
  await whilePending('stepAsync / set lr', step, () => {
    opt.paramGroups[0].lr = 0.1;
  });
  await whilePending('stepAsync / stateDict', step, () => opt.stateDict());
  await whilePending('stepAsync / forward', step, () => m.forward(x));

  const train = () => trainStepAsync({ model: m, optimizer: opt, input: x, target: y });
  await whilePending('trainStepAsync / forward', train, () => m.forward(x));
  await whilePending('trainStepAsync / zeroGrad', train, () => opt.zeroGrad());
  await whilePending('trainStepAsync / setGrad', train, () => {
    w.grad = null;
  });

  // what no task changes stays readable: metadata, names, options
  await whilePending('forwardAsync / metadata', fwd, () => [w.shape, w.dtype, w.requiresGrad, m.kind, m.training, m.namedParameters().length]);
  await whilePending('stepAsync / lr read', step, () => opt.paramGroups[0].lr);
  // another module is not affected
  const other = model(2);
  await whilePending('forwardAsync / another module', fwd, () => other.forward(x));
}

// ---- dispose while a task runs: the task keeps what it uses alive
const dispose = { forwardAsync: 0, trainStepAsync: 0, backwardAsync: 0 };
for (let i = 0; i < rounds; i++) {
  {
    const ref = model(10 + i);
    const want = flat(ref.forward(x));
    const m = model(10 + i);
    const input = x.clone();
    const pending = m.forwardAsync(input);
    m.dispose();
    input.dispose();
    globalThis.gc?.();
    dispose.forwardAsync = Math.max(dispose.forwardAsync, maxDiff(flat(await pending), want));
  }
  {
    const ref = model(20 + i);
    const refOpt = new optim.SGD(ref.parameters(), { lr: 0.1 });
    await trainStepAsync({ model: ref, optimizer: refOpt, input: x, target: y });
    const want = ref.parameters().flatMap(flat);
    const m = model(20 + i);
    const params = m.parameters();
    const opt = new optim.SGD(params, { lr: 0.1 });
    const input = x.clone();
    const target = y.clone();
    const pending = trainStepAsync({ model: m, optimizer: opt, input, target });
    m.dispose();
    opt.dispose();
    input.dispose();
    target.dispose();
    globalThis.gc?.();
    await pending;
    dispose.trainStepAsync = Math.max(dispose.trainStepAsync, maxDiff(params.flatMap(flat), want));
  }
  {
    const ref = model(30 + i);
    nn.functional.crossEntropy(ref.forward(x), y).backward();
    const want = ref.parameters().flatMap((p) => flat(p.grad));
    const m = model(30 + i);
    const params = m.parameters();
    const loss = nn.functional.crossEntropy(m.forward(x), y);
    const pending = loss.backwardAsync();
    loss.dispose();
    m.dispose();
    globalThis.gc?.();
    await pending;
    dispose.backwardAsync = Math.max(
      dispose.backwardAsync,
      maxDiff(
        params.flatMap((p) => flat(p.grad)),
        want,
      ),
    );
  }
}

console.log(JSON.stringify({ sync, dispose }));
