// One rank of a process group, run by native.test.ts in its own process:
//   node native-rank.mjs <mode> <rank> <worldSize> <port> <timeoutMs>
// collectives: all-reduce (every op, one and two tensors), broadcast, all-gather
//   and barrier on random tensors; prints one JSON line with this rank's inputs
//   and what each collective gave, for the test to check against the math.
// exit-early: the last rank exits right after the rendezvous; the others
//   all-reduce and print the error they get and how long it took.
// hang: the last rank stays alive but never joins the all-reduce (it prints
//   {"joined":true} once up, so the test can stop or kill it); hang-first: the
//   same with rank 0 as the one that never joins.
// alone: init without the other ranks (an unreachable master or a busy port).
import { native } from '../../dist/native/loader.js';

const [mode, rankArg, worldArg, portArg, timeoutArg] = process.argv.slice(2);
const rank = Number(rankArg);
const worldSize = Number(worldArg);
const masterPort = Number(portArg);
const timeoutMs = Number(timeoutArg);
const init = () => native.distInit({ backend: 'gloo', rank, worldSize, masterAddr: '127.0.0.1', masterPort, timeoutMs });

// A small deterministic generator per rank, so every rank has its own values.
let seed = 1234 + rank * 7919;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const values = (n, scale) => Array.from({ length: n }, () => Math.round((random() * 2 - 1) * scale * 1000) / 1000);
const data = (t) => Array.from(native.toTypedArray(t), Number);

if (mode === 'collectives') {
  await init();
  const out = { rank: native.distRank(), worldSize: native.distWorldSize(), inputs: {}, results: {} };
  const x = values(6, 10); // float32, shape [2, 3]
  const ints = values(5, 100).map(Math.round); // int32
  out.inputs = { x, ints };
  for (const op of ['sum', 'avg', 'max', 'min']) {
    const t = native.fromData(new Float32Array(x), [2, 3]);
    const [same] = await native.distAllReduceAsync([t], op);
    out.results[op] = data(t);
    out.sameHandle = same === t || data(same).join() === data(t).join();
  }
  for (const op of ['sum', 'max', 'min']) {
    const t = native.fromData(new Int32Array(ints), [5]);
    await native.distAllReduceAsync([t], op);
    out.results[`int-${op}`] = data(t);
  }
  // two tensors in one call are reduced each on its own (not summed together)
  const a = native.fromData(new Float32Array(x), [6]);
  const b = native.fromData(new Float64Array(ints), [5]);
  await native.distAllReduceAsync([a, b], 'sum');
  out.results.pair = [data(a), data(b)];
  const src = worldSize - 1;
  const bx = native.fromData(new Float32Array(x), [2, 3]);
  await native.distBroadcastAsync([bx], src);
  out.results.broadcast = data(bx);
  const gathered = await native.distAllGatherAsync(native.fromData(new Float32Array(x), [3, 2]));
  out.results.allGather = gathered.map((g) => ({ shape: native.shape(g), values: data(g) }));
  // the last rank comes late to the barrier; the others wait for it, with the event loop free
  if (rank === worldSize - 1) await new Promise((r) => setTimeout(r, 600));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 20);
  const started = Date.now();
  await native.distBarrierAsync();
  clearInterval(timer);
  out.barrier = { ms: Date.now() - started, ticks };
  native.distDestroy();
  out.afterDestroy = [native.distRank(), native.distWorldSize()];
  console.log(JSON.stringify(out));
} else if (mode === 'exit-early' || mode === 'hang' || mode === 'hang-first') {
  await init();
  if (rank === (mode === 'hang-first' ? 0 : worldSize - 1)) {
    if (mode === 'exit-early') process.exit(0);
    console.log(JSON.stringify({ joined: true }));
    setTimeout(() => {}, 60_000); // alive, never joining
  } else {
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    try {
      await native.distAllReduceAsync([native.ones([4])], 'sum');
      console.log(JSON.stringify({ error: null }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.message, ms: Date.now() - started }));
    }
    process.exit(0);
  }
} else if (mode === 'alone') {
  const started = Date.now();
  try {
    await init();
    console.log(JSON.stringify({ error: null }));
  } catch (e) {
    console.log(JSON.stringify({ error: e.message, ms: Date.now() - started }));
  }
  process.exit(0);
}
