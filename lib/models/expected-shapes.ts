// The state-dict shapes of the built-in vision architectures, computed from
// their options without building anything. models.load compares a
// checkpoint against these before it allocates a model, so a small file
// that declares a huge head or a huge width is refused instead of built.
// (test/models/expected-shapes.test.ts checks them against built models.)

export type Shapes = Map<string, number[]>;

function batchNorm(out: Shapes, path: string, n: number): void {
  for (const k of ['weight', 'bias', 'running_mean', 'running_var']) out.set(`${path}.${k}`, [n]);
  out.set(`${path}.num_batches_tracked`, []);
}

function resnetShapes(depth: number, o: { numClasses: number; width: number; inChannels: number; smallStem: boolean }): Shapes {
  const layers = { 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3] }[depth]!;
  const bottleneck = depth >= 50;
  const expansion = bottleneck ? 4 : 1;
  const s: Shapes = new Map();
  const k = o.smallStem ? 3 : 7;
  s.set('conv1.weight', [o.width, o.inChannels, k, k]);
  batchNorm(s, 'bn1', o.width);
  let inPlanes = o.width;
  layers.forEach((blocks, li) => {
    const planes = o.width * 2 ** li;
    for (let b = 0; b < blocks; b++) {
      const p = `layer${li + 1}.${b}`;
      if (bottleneck) {
        s.set(`${p}.conv1.weight`, [planes, inPlanes, 1, 1]);
        batchNorm(s, `${p}.bn1`, planes);
        s.set(`${p}.conv2.weight`, [planes, planes, 3, 3]);
        batchNorm(s, `${p}.bn2`, planes);
        s.set(`${p}.conv3.weight`, [planes * 4, planes, 1, 1]);
        batchNorm(s, `${p}.bn3`, planes * 4);
      } else {
        s.set(`${p}.conv1.weight`, [planes, inPlanes, 3, 3]);
        batchNorm(s, `${p}.bn1`, planes);
        s.set(`${p}.conv2.weight`, [planes, planes, 3, 3]);
        batchNorm(s, `${p}.bn2`, planes);
      }
      // the first block of a stage changes stride (stages 2-4) or channels: a 1x1 projection
      if (b === 0 && (li > 0 || inPlanes !== planes * expansion)) {
        s.set(`${p}.downsample.0.weight`, [planes * expansion, inPlanes, 1, 1]);
        batchNorm(s, `${p}.downsample.1`, planes * expansion);
      }
      inPlanes = planes * expansion;
    }
  });
  s.set('fc.weight', [o.numClasses, inPlanes]);
  s.set('fc.bias', [o.numClasses]);
  return s;
}

function vggShapes(depth: 11 | 16, bn: boolean, numClasses: number): Shapes {
  const stages =
    depth === 11
      ? [[64], [128], [256, 256], [512, 512], [512, 512]]
      : [
          [64, 64],
          [128, 128],
          [256, 256, 256],
          [512, 512, 512],
          [512, 512, 512],
        ];
  const s: Shapes = new Map();
  let i = 0;
  let inC = 3;
  for (const stage of stages) {
    for (const c of stage) {
      s.set(`features.${i}.weight`, [c, inC, 3, 3]);
      s.set(`features.${i}.bias`, [c]);
      if (bn) batchNorm(s, `features.${i + 1}`, c);
      i += bn ? 3 : 2; // conv, (bn), relu
      inC = c;
    }
    i += 1; // max-pool
  }
  const linear = (p: string, out: number, inF: number) => {
    s.set(`${p}.weight`, [out, inF]);
    s.set(`${p}.bias`, [out]);
  };
  linear('classifier.0', 4096, 512 * 7 * 7);
  linear('classifier.3', 4096, 4096);
  linear('classifier.6', numClasses, 4096);
  return s;
}

function efficientnetB0Shapes(numClasses: number): Shapes {
  // torchvision's B0: (expand ratio, kernel, stride, out channels, repeats) per stage
  const stages = [
    [1, 3, 1, 16, 1],
    [6, 3, 2, 24, 2],
    [6, 5, 2, 40, 2],
    [6, 3, 2, 80, 3],
    [6, 5, 1, 112, 3],
    [6, 5, 2, 192, 4],
    [6, 3, 1, 320, 1],
  ];
  const s: Shapes = new Map();
  s.set('features.0.0.weight', [32, 3, 3, 3]);
  batchNorm(s, 'features.0.1', 32);
  let inC = 32;
  stages.forEach(([expand, kernel, , outC, repeats], si) => {
    for (let r = 0; r < repeats; r++) {
      const p = `features.${si + 1}.${r}.block`;
      const hidden = inC * expand;
      const squeeze = Math.max(1, Math.floor(inC / 4));
      let j = 0;
      if (expand !== 1) {
        s.set(`${p}.${j}.0.weight`, [hidden, inC, 1, 1]);
        batchNorm(s, `${p}.${j}.1`, hidden);
        j++;
      }
      s.set(`${p}.${j}.0.weight`, [hidden, 1, kernel, kernel]);
      batchNorm(s, `${p}.${j}.1`, hidden);
      j++;
      s.set(`${p}.${j}.fc1.weight`, [squeeze, hidden, 1, 1]);
      s.set(`${p}.${j}.fc1.bias`, [squeeze]);
      s.set(`${p}.${j}.fc2.weight`, [hidden, squeeze, 1, 1]);
      s.set(`${p}.${j}.fc2.bias`, [hidden]);
      j++;
      s.set(`${p}.${j}.0.weight`, [outC, hidden, 1, 1]);
      batchNorm(s, `${p}.${j}.1`, outC);
      inC = outC;
    }
  });
  s.set('features.8.0.weight', [1280, 320, 1, 1]);
  batchNorm(s, 'features.8.1', 1280);
  s.set('classifier.1.weight', [numClasses, 1280]);
  s.set('classifier.1.bias', [numClasses]);
  return s;
}

/**
 * The state dict (names and shapes) that `architectures[arch](options)`
 * builds, or null for an unknown arch. Options are assumed valid (the
 * builders check them); missing ones take the builders' defaults.
 */
export function expectedShapes(arch: string, options: { numClasses?: number; width?: number; inChannels?: number; smallStem?: boolean }): Shapes | null {
  const numClasses = options.numClasses ?? 1000;
  const resnet = /^resnet(18|34|50|101|152)$/.exec(arch);
  if (resnet)
    return resnetShapes(Number(resnet[1]), {
      numClasses,
      width: options.width ?? 64,
      inChannels: options.inChannels ?? 3,
      smallStem: options.smallStem ?? false,
    });
  const vgg = /^vgg(11|16)(_bn)?$/.exec(arch);
  if (vgg) return vggShapes(Number(vgg[1]) as 11 | 16, Boolean(vgg[2]), numClasses);
  if (arch === 'efficientnet_b0') return efficientnetB0Shapes(numClasses);
  return null;
}
