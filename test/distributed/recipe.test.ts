// A recipe trained by `finetorch train --nproc-per-node 2`: two real ranks over
// Gloo on loopback. Each rank trains its half of the batches (the epoch's
// batch count halves), both report the same epoch loss (averaged over the
// ranks), and only rank 0 writes the run folder; rank 1 logs to rank1.log.
// And a recipe's image data sharded by sample: each rank decodes only its own images.
import { describe, expect, it, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { buildData, distributed, parseRecipe } from 'finetorch';
import { cli, parseEvents, pngFolder, type Event } from '../cli/cli-helpers';

const dir = mkdtempSync(join(tmpdir(), 'finetorch-dist-recipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('finetorch train --nproc-per-node 2', () => {
  it('trains one run on two ranks: half the batches each, the same epoch losses, one run folder written by rank 0', () => {
    writeFileSync(
      join(dir, 'r.json'),
      JSON.stringify({
        model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
        optimizer: { type: 'SGD', lr: 0.05, momentum: 0.9 },
        epochs: 2,
        batchSize: 16,
        seed: 1,
        out: 'run',
        data: { kind: 'fashionMnist', classes: [0, 1, 8], perClass: 64, val: 0.25, testPerClass: 20 },
      }),
    );
    const one = cli(['train', '--config', join(dir, 'r.json'), '--out', join(dir, 'single')]);
    expect(one.status, one.stderr).toBe(0);
    const two = cli(['train', '--nproc-per-node', '2', '--config', join(dir, 'r.json')], { cwd: dir });
    expect(two.status, two.stderr).toBe(0);

    const out = join(dir, 'run');
    expect(readdirSync(out).sort()).toEqual(['best', 'curves.png', 'curves.svg', 'events.jsonl', 'last', 'metrics.json', 'rank1.log', 'run.json']);
    const rank0 = parseEvents(readFileSync(join(out, 'events.jsonl'), 'utf8'));
    const rank1 = parseEvents(readFileSync(join(out, 'rank1.log'), 'utf8'));
    const batches = (events: Event[]) => (events.find((e) => e.type === 'step') as Event & { batches: number }).batches;
    const single = (one.events.find((e) => e.type === 'step') as Event & { batches: number }).batches;
    // DistributedSampler: ceil(samples / 2) per rank, so ceil of half the batches (padding repeats samples)
    expect(batches(rank0)).toBe(batches(rank1));
    expect(batches(rank0)).toBeLessThan(single);
    expect(batches(rank0)).toBeGreaterThanOrEqual(single / 2);
    const losses = (events: Event[]) => events.filter((e) => e.type === 'epoch').map((e) => (e as Event & { trainLoss: number }).trainLoss);
    expect(losses(rank0)).toHaveLength(2);
    expect(losses(rank1)).toEqual(losses(rank0));
    // rank 0 evaluated the best checkpoint on the test part and wrote metrics.json; rank 1 did not
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.test.samples).toBe(60);
    expect(rank1.find((e) => e.type === 'end')).toMatchObject({ status: 'ok', test: null });
  }, 120000);
});

describe("distributed.shard of a recipe's image folder", () => {
  it('each rank decodes only its own images: a broken image fails the one rank whose shard holds it', async () => {
    const root = join(dir, 'images');
    const files = await pngFolder(root, { 1: 'trouser', 8: 'bag' }, 6);
    const broken = files[3];
    writeFileSync(broken, 'not a PNG');
    const recipe = parseRecipe({
      model: { arch: 'resnet18', width: 8, inChannels: 1, smallStem: true },
      data: { kind: 'imageFolder', root, channels: 1, split: { train: 1, val: 0, test: 0 } },
      optimizer: { lr: 0.01 },
      batchSize: 2,
      epochs: 1,
      seed: 1,
    });
    const { parts } = await buildData(recipe, ['train']);
    const outcomes = [];
    for (const rank of [0, 1]) {
      const mine = distributed.shard(parts.train!, { rank, worldSize: 2 });
      expect(mine.length).toBe(3);
      let batches = 0;
      let error: Error | null = null;
      try {
        for await (const b of mine.batches(0)) {
          batches++;
          expect(b.input.shape).toEqual([2, 1, 28, 28]);
        }
      } catch (e) {
        error = e as Error;
      }
      outcomes.push({ batches, error });
    }
    // split by batch, every rank would read (and fail on) every image
    const failed = outcomes.filter((o) => o.error);
    expect(failed).toHaveLength(1);
    expect(failed[0].error!.name).toBe('DataError');
    expect(failed[0].error!.message).toContain(basename(broken));
    expect(outcomes.find((o) => !o.error)!.batches).toBe(3);
  });
});
