// Two fit() calls on one model, started together, again and again:
//   node concurrent-fit.mjs [rounds] [hidden] [batchSize]
// Run in a child process by concurrency.test.ts, so a crash (heap corruption)
// fails the test instead of killing the runner. Each fit must either finish
// or reject with a JS Error; prints a JSON summary line. Even rounds use fit's
// one-call native step, odd rounds a loss function (forward, backwardAsync,
// stepAsync). Before the fix, 40 rounds died with SIGSEGV every time (4 of 4).
import { torch, nn, optim, fit, TensorLoader } from '../../dist/index.js';

const rounds = Number(process.argv[2] ?? 40);
const hidden = Number(process.argv[3] ?? 256);
const batchSize = Number(process.argv[4] ?? 16);
const outcomes = { fulfilled: 0, rejected: 0, messages: {} };
for (let round = 0; round < rounds; round++) {
  torch.manualSeed(round);
  const model = new nn.Sequential(new nn.Linear(32, hidden), new nn.ReLU(), new nn.Linear(hidden, 4));
  const x = torch.randn([2048, 32]);
  const y = torch.randint(0, 4, [2048]);
  const run = (seed) =>
    fit({
      model,
      optimizer: new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
      train: new TensorLoader(x, y, { batchSize, shuffle: true, seed }),
      epochs: 3,
      seed,
      ...(round % 2 === 1 ? { loss: (logits, target) => nn.functional.crossEntropy(logits, target) } : {}),
    });
  const results = await Promise.allSettled([run(1), run(2)]);
  for (const r of results) {
    if (r.status === 'fulfilled') outcomes.fulfilled++;
    else {
      outcomes.rejected++;
      const m = r.reason instanceof Error ? r.reason.message : `non-Error: ${String(r.reason)}`;
      outcomes.messages[m] = (outcomes.messages[m] ?? 0) + 1;
    }
  }
  // the model is still usable and its weights are numbers
  const out = model.forward(x.narrow(0, 0, 8));
  outcomes.finite = (outcomes.finite ?? true) && out.isnan().any().item() === false;
  model.dispose();
}
console.log(JSON.stringify(outcomes));
