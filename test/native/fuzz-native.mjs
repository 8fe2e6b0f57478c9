// Calls every function of the native addon with combinations of junk arguments.
// Each call must return or throw a JS Error; a crash fails the parent test.
// Prints a JSON summary line.
import { native } from '../../dist/native/loader.js';

const t = () => native.ones([2, 2], {});
const junk = () => [
  undefined,
  null,
  0,
  -1,
  2.5,
  3,
  'x',
  '...',
  {},
  [],
  [1, -2],
  [2, 2],
  true,
  t(),
  native.createModule('Linear', { inFeatures: 2, outFeatures: 2 }),
  new Float32Array(4),
];
// Functions whose junk calls would rightly allocate a lot or change global state.
const skip = new Set(['setNumThreads', 'manualSeed', 'setGradEnabled', 'TensorHandle']);
let calls = 0,
  thrown = 0,
  nonErrorThrows = 0,
  functions = 0;
for (const [name, fn] of Object.entries(native)) {
  if (typeof fn !== 'function' || skip.has(name)) continue;
  functions++;
  const values = junk();
  for (const a of values) {
    for (const b of values) {
      for (const c of [undefined, 1, 'mean', {}, t()]) {
        calls++;
        try {
          const r = fn(a, b, c);
          if (r && typeof r.then === 'function') await r.catch(() => {});
        } catch (e) {
          thrown++;
          if (!(e instanceof Error)) nonErrorThrows++;
        }
      }
    }
  }
}
native.setGradEnabled(true);
console.log(JSON.stringify({ functions, calls, thrown, nonErrorThrows }));
