// A small end-to-end training run that proves the stack works: an MLP learns
// whether a point lies inside a circle, with AdamW and two param groups
// (backbone at a lower learning rate than the head), trained off the main thread.
// Exits non-zero unless test accuracy exceeds 95%.
import { torch, nn, optim, trainStepAsync, loadReport } from 'finetorch';

torch.manualSeed(0);
function makeData(n) {
  const x = torch.rand([n, 2]).mul(4).sub(2); // uniform in [-2, 2)^2
  const y = x.pow(2).sum(1).lt(1.5).long(); // inside the circle of radius sqrt(1.5)
  return { x, y };
}
const train = makeData(2000);
const test = makeData(500);

const backbone = new nn.Sequential(new nn.Linear(2, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU());
const head = new nn.Linear(64, 2);
const model = new nn.Sequential({ backbone, head });
const opt = new optim.AdamW(
  [
    { params: backbone.parameters(), lr: 5e-3 },
    { params: head.parameters(), lr: 1e-2 },
  ],
  { weightDecay: 1e-4 },
);

console.log(
  `finetorch ${loadReport.origin} binary on libtorch ${loadReport.libtorch.version} (${loadReport.libtorch.source ?? 'prebuilt'}), ${torch.getNumThreads()} threads`,
);
const started = Date.now();
for (let epoch = 1; epoch <= 30; epoch++) {
  const perm = torch.randperm(2000);
  let total = 0;
  for (let i = 0; i < 2000; i += 100) {
    // tidy() is synchronous: it builds the batch, the await happens outside it
    const batch = torch.tidy(() => {
      const idx = perm.narrow(0, i, 100);
      return { input: train.x.indexSelect(0, idx), target: train.y.indexSelect(0, idx) };
    });
    const { loss, output } = await trainStepAsync({ model, optimizer: opt, ...batch });
    total += loss.item();
    for (const t of [loss, output, batch.input, batch.target]) t.dispose();
  }
  if (epoch % 10 === 0) console.log(`epoch ${epoch}: mean loss ${(total / 20).toFixed(4)}`);
}
model.eval();
const accuracy = torch.noGrad(() => model.forward(test.x).argmax(1).eq(test.y).float().mean().item());
console.log(`test accuracy ${(accuracy * 100).toFixed(1)}% in ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (accuracy <= 0.95) {
  console.error('accuracy is not above 95%: something in the stack is wrong');
  process.exit(1);
}
