// Runs 5,000 iterations of tensor and module work per mode and prints RSS figures as JSON.
import { torch, nn } from '../../dist/index.js';

const mb = () => process.memoryUsage().rss / 2 ** 20;
const lin = new nn.Linear(256, 256);
const modes = {
  dispose() {
    const a = torch.randn([256, 256]);
    const p = a.matmul(a);
    const b = p.relu();
    const s = b.sum();
    s.item();
    for (const t of [a, p, b, s]) t.dispose();
  },
  tidy() {
    torch.tidy(() => {
      const x = torch.randn([256, 256], { requiresGrad: true });
      const y = lin.forward(x).sigmoid().mean();
      y.backward();
      return y.item();
    });
    lin.zeroGrad();
  },
  finalizers() {
    // no dispose at all: only GC and the native finalizers free these
    const a = torch.randn([256, 256]);
    a.matmul(a).sum().item();
  },
};
const out = {};
for (const [name, step] of Object.entries(modes)) {
  for (let i = 0; i < 500; i++) step();
  const collect = async () => {
    global.gc();
    await new Promise((r) => setTimeout(r, 50));
    global.gc();
    await new Promise((r) => setTimeout(r, 50));
  };
  const settle = async () => {
    await collect();
    // cached free buffers are reusable memory, not a leak: measure without them
    torch.emptyCpuCache();
  };
  await settle();
  const warm = mb();
  for (let i = 0; i < 5000; i++) step();
  await collect();
  const beforeEmpty = mb();
  await settle();
  const end = mb();
  const stats = torch.cpuCacheStats();
  out[name] = {
    warmMB: warm,
    endMB: end,
    growthMB: end - warm,
    withCacheMB: beforeEmpty,
    liveMB: stats.liveBytes / 2 ** 20,
    tensorMB: (256 * 256 * 4 * 3) / 2 ** 20,
  };
}
console.log(JSON.stringify(out));
