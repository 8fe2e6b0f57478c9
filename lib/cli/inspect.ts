// `finetorch inspect <checkpoint>`: what a checkpoint holds: its format, a
// guess of the architecture, parameter count, dtypes, and (for a known
// architecture) its blocks and head.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { io } from '../io/index.js';
import { jit } from '../io/jit.js';
import { models, type ArchitectureName } from '../models/index.js';
import type { StateDict } from '../nn/module.js';
import { HEAD_PATHS } from '../models/vision.js';
import { visionCheckpointProblems } from '../models/checkpoint-checks.js';
import { inferVisionArchitecture } from '../models/infer.js';

export interface InspectReport {
  path: string;
  format: string;
  /** The architecture the names and shapes match, or null. */
  architecture: string | null;
  numClasses: number | null;
  tensors: number;
  parameters: number;
  dtypes: Record<string, number>;
  blocks: Array<{ name: string; paths: string[]; parameters: number }> | null;
  head: { path: string; shape: number[] } | null;
}

const count = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/** Guesses a torchvision or Hugging Face architecture from parameter names and shapes. */
export function guessArchitecture(sd: StateDict): string | null {
  const keys = Object.keys(sd);
  const has = (k: string) => k in sd;
  const blocksIn = (prefix: string) => new Set(keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).split('.')[0])).size;
  // image models: the architecture whose names and shapes the file has (what train/recipes use, models/infer.ts)
  const inferred = inferVisionArchitecture(sd).arch;
  if (inferred) return inferred;
  if (keys.some((k) => k.startsWith('distilbert.'))) return 'distilbert';
  if (keys.some((k) => k.startsWith('roberta.'))) return 'roberta';
  if (keys.some((k) => k.startsWith('bert.')) || has('embeddings.word_embeddings.weight')) return 'bert';
  if (has('fc.weight') && has('layer4.0.conv1.weight')) {
    const bottleneck = has('layer1.0.conv3.weight');
    const depth = bottleneck ? { 6: 50, 23: 101, 36: 152 }[blocksIn('layer3.')] : { 2: 18, 6: 34 }[blocksIn('layer3.')];
    return depth ? `resnet${depth}` : null;
  }
  if (has('features.1.0.block.0.0.weight') && has('classifier.1.weight')) return 'efficientnet_b0';
  if (has('classifier.6.weight') && has('features.0.weight')) {
    const convs = keys.filter((k) => /^features\.\d+\.weight$/.test(k) && sd[k].shape.length === 4).length;
    const bn = has('features.1.running_mean');
    const depth = { 8: 11, 13: 16 }[convs];
    return depth ? `vgg${depth}${bn ? '_bn' : ''}` : null;
  }
  return null;
}

export function inspect(path: string): InspectReport {
  if (!existsSync(path)) throw new Error(`inspect: ${path} does not exist`);
  let format: string = io.detectFormat(path);
  let sd: StateDict;
  if (format === 'torch-zip') {
    try {
      sd = io.load(path);
    } catch (err) {
      if (!/TorchScript archive/.test((err as Error).message)) throw err;
      format = 'torchscript';
      sd = jit.load(path).stateDict();
    }
  } else {
    sd = io.load(path);
  }
  const dtypes: Record<string, number> = {};
  let parameters = 0;
  for (const [key, t] of Object.entries(sd)) {
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    // buffers (BatchNorm statistics, position ids) are state, not parameters
    if (!/running_(mean|var)$|num_batches_tracked$|position_ids$/.test(key)) parameters += count(t.shape);
  }
  const architecture = guessArchitecture(sd);
  const report: InspectReport = {
    path,
    format: format === 'torch-zip' ? 'torch.save (zip)' : format,
    architecture,
    numClasses: null,
    tensors: Object.keys(sd).length,
    parameters,
    dtypes,
    blocks: null,
    head: null,
  };
  // blocks come from the architecture's structure, sized like the checkpoint's head
  if (architecture && architecture in models.architectures) {
    const make = models.architectures[architecture as ArchitectureName];
    const headWeight = sd[`${HEAD_PATHS[architecture]}.weight`];
    const numClasses = headWeight?.shape[0] ?? 1000;
    // built only when the checkpoint has the architecture's shapes (a head declared [N, 0] must not build N outputs)
    if (!visionCheckpointProblems(path, architecture, { numClasses }, sd, HEAD_PATHS[architecture], false).length) fill(report, make({ numClasses }));
  } else if (architecture && format !== 'torchscript' && ['bert', 'roberta', 'distilbert'].includes(architecture)) {
    const config = join(dirname(path), 'config.json');
    if (existsSync(config)) fill(report, models.load(path, { arch: architecture as 'bert', config }));
  }
  return report;
}

function fill(report: InspectReport, model: ReturnType<typeof models.load>): void {
  report.blocks = model.blocks().map((b) => ({
    name: b.name,
    paths: b.paths,
    parameters: b.modules.reduce((n, m) => n + m.parameters().reduce((a, p) => a + p.numel(), 0), 0),
  }));
  const head = model.head();
  const weight = head.module.parameters()[0];
  report.head = { path: head.path, shape: weight.shape };
  report.numClasses = weight.shape[0];
  model.dispose();
}

export function formatReport(r: InspectReport): string {
  const lines = [
    `checkpoint    ${r.path}`,
    `format        ${r.format}`,
    `architecture  ${r.architecture ?? 'unknown'}${r.numClasses ? ` (${r.numClasses} classes)` : ''}`,
    `tensors       ${r.tensors}`,
    `parameters    ${r.parameters.toLocaleString('en-US')}`,
    `dtypes        ${Object.entries(r.dtypes)
      .map(([d, n]) => `${d} x${n}`)
      .join(', ')}`,
  ];
  if (r.head) lines.push(`head          ${r.head.path} [${r.head.shape.join(', ')}]`);
  if (r.blocks) {
    lines.push('blocks');
    for (const b of r.blocks)
      lines.push(
        `  ${b.name.padEnd(12)} ${b.parameters.toLocaleString('en-US').padStart(12)}  ${b.paths.length > 3 ? `${b.paths[0]} .. ${b.paths[b.paths.length - 1]}` : b.paths.join(', ')}`,
      );
  }
  return lines.join('\n');
}
