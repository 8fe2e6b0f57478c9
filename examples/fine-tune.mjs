// The seed's four steps on Fashion-MNIST: load a pretrained generalist, swap its head, freeze and set differential LRs, train and evaluate.
import { fileURLToPath } from 'node:url';
import { torch, data, models, finetune, optim, losses, fit, evaluate, TensorLoader, LRScheduler } from 'finetorch';

// Task data: 1,000 images of classes 5-9 (Sandal .. Ankle boot, relabelled 0-4), split 8:1:1 stratified
const all = data.fashionMnist('train');
const pick = torch.tensor(
  Array.from(all.labels.dataSync(), Number)
    .flatMap((c, i) => (c >= 5 ? [i] : []))
    .slice(0, 1000),
);
const x = all.images.indexSelect(0, pick).unsqueeze(1).float().div(255).sub(0.286).div(0.353);
const y = all.labels.indexSelect(0, pick).sub(5);
const [train, val, test] = data
  .split(Array.from(y.dataSync(), Number), [0.8, 0.1, 0.1], { stratify: true, seed: 0 })
  .map((idx, i) => new TensorLoader(x.indexSelect(0, torch.tensor(idx)), y.indexSelect(0, torch.tensor(idx)), { batchSize: 32, shuffle: i === 0, seed: 0 }));

const model = models.load(fileURLToPath(new URL('../assets/fashion-resnet18w16-c0-4.safetensors', import.meta.url))); // 1. pretrained on classes 0-4
finetune.swapHead(model, 5); // 2. a fresh 5-class head
finetune.freeze(model, { blocks: 2 }); // 3. freeze stem + layer1,
const optimizer = new optim.AdamW(finetune.paramGroups(model, { bottom: 1e-5, top: 1e-3, weightDecay: 0.01 })); //  differential LRs
const scheduler = new LRScheduler(optimizer, { kind: 'cosine', warmupSteps: train.length, totalSteps: 10 * train.length });
const loss = (logits, target) => losses.focalLoss(logits, target, { gamma: 2 });
const onEvent = (e) => e.type === 'epoch' && console.log(`epoch ${e.epoch + 1}: val accuracy ${(e.val.accuracy * 100).toFixed(1)}%`);
await fit({ model, optimizer, scheduler, train, val, epochs: 10, loss, onEvent }); // 4. train, then evaluate
const r = await evaluate(model, test);
console.log(`test accuracy ${(r.accuracy * 100).toFixed(1)}%, macro-F1 ${r.f1Macro.toFixed(3)}, AUC-ROC ${r.rocAuc.toFixed(3)}`);
