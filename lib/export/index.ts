// exportModel: a trained model out of finetorch, in the formats the Python
// world loads.
//   pth          the state dict as torch.save writes it (torch.load(f, weights_only=True));
//                the vision architectures use torchvision's names, the text models transformers'
//   safetensors  the state dict, with finetorch's metadata (models.load rebuilds it)
//   hf           a Hugging Face folder for text models: config.json + model.safetensors
//                (models.savePretrained) and the run's tokenizer files
//   torchscript  a traced TorchScript module (torch.jit.load)
//   onnx         an ONNX model
// A detector (Faster R-CNN) goes to pth or safetensors only: its forward
// (resizing, proposals, NMS) depends on the data, so tracing it is refused.
// The source is a run folder (runRecipe / finetorch train: the model is
// rebuilt from run.json and its best/, else last/, weights), a checkpoint
// folder (best/, last/), a weights file, or a Module / Architecture.
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { ArgumentError, ConfigError } from '../errors.js';
import { load as loadStateDict, save as saveStateDict } from '../io/index.js';
import { writeAll, writeAtomic } from '../io/atomic.js';
import { jit } from '../io/jit.js';
import { onnx } from '../io/onnx.js';
import { Architecture } from '../models/architecture.js';
import { load as loadModel, save as saveModel, savePretrained, savedArchitecture } from '../models/index.js';
import { TextModel } from '../models/text.js';
import { FASTER_RCNN_DEFAULTS, FasterRCNN } from '../models/detection/faster-rcnn.js';
import { Module, type StateDict } from '../nn/module.js';
import type { InputSpec } from '../recipes/build.js';
import { loadTrainedModel } from '../recipes/load-run.js';
import { resolveCheckpoint } from '../recipes/run-record.js';
import { ones, tensor, zeros } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';

export const EXPORT_FORMATS = ['pth', 'safetensors', 'hf', 'torchscript', 'onnx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  to: ExportFormat;
  /**
   * Where to write: a file (its extension names the format's file: .pth/.pt/.bin,
   * .safetensors, .pt for TorchScript, .onnx) or a folder that receives
   * model.pth, model.safetensors, model.pt, model.onnx, or the Hugging Face files.
   * Default for a run or checkpoint: <run folder>/export/.
   */
  out?: string;
  /** TorchScript and ONNX: the input(s) to trace with (default for a run: one input shaped as its data). */
  exampleInput?: Tensor | Tensor[];
}

export interface ExportResult {
  /** The files written (absolute paths). */
  files: string[];
  format: ExportFormat;
  /** How to load what was written, and what was chosen along the way. */
  notes: string[];
}

const FN = 'exportModel';

/** The file each format writes inside an `out` folder, and the extensions that make `out` the file itself. */
const FILES: Record<Exclude<ExportFormat, 'hf'>, { name: string; extensions: string[] }> = {
  pth: { name: 'model.pth', extensions: ['.pth', '.pt', '.bin'] },
  safetensors: { name: 'model.safetensors', extensions: ['.safetensors'] },
  torchscript: { name: 'model.pt', extensions: ['.pt', '.pth'] },
  onnx: { name: 'model.onnx', extensions: ['.onnx'] },
};

/** What a source stands for: a model (or, for a bare weights file, only its state dict) and what its run says. */
interface Source {
  model: Module | null;
  /** A weights file without run.json or metadata: its tensors, for pth/safetensors. */
  stateDict: StateDict | null;
  /** The weights file it came from (never overwritten by the export). */
  weights: string | null;
  classes: string[] | null;
  input: InputSpec | null;
  runDir: string | null;
  /** Where exports go by default. */
  home: string | null;
  /** The model was built here: dispose it when done. */
  owned: boolean;
}

function openSource(source: unknown, format: ExportFormat): Source {
  if (source instanceof Module) return { model: source, stateDict: null, weights: null, classes: null, input: null, runDir: null, home: null, owned: false };
  if (typeof source !== 'string' || !source)
    throw new ArgumentError(FN, 'source must be a run folder, a checkpoint folder (best/, last/), a weights file, or a Module', 'source');
  const ck = resolveCheckpoint(source, 'exportModel source');
  const home = ck.runDir ?? ck.dir ?? dirname(ck.weights);
  // a detector is refused what it cannot go to before its weights are read
  if ((ck.run?.model.arch ?? savedArchitecture(ck.weights)?.arch) === DETECTOR_ARCH) refuseDetector(format);
  if (ck.run) {
    const model = loadTrainedModel(ck.run.model, ck.weights, { numClasses: ck.run.classes.length });
    return { model, stateDict: null, weights: ck.weights, classes: ck.run.classes, input: ck.run.input, runDir: ck.runDir, home, owned: true };
  }
  // no run.json: the file's own metadata may name its architecture (models.save writes it)
  if (savedArchitecture(ck.weights))
    return { model: loadModel(ck.weights), stateDict: null, weights: ck.weights, classes: null, input: null, runDir: null, home, owned: true };
  if (format === 'pth' || format === 'safetensors')
    return { model: null, stateDict: loadStateDict(ck.weights), weights: ck.weights, classes: null, input: null, runDir: null, home, owned: true };
  throw new ConfigError(
    'source',
    `${ck.weights} does not say which model it holds (no run.json beside it, no architecture in its metadata); ` +
      `to '${format}' needs the model: give the run folder, or build the model and pass it`,
  );
}

/** The file a single-file format writes, from `out` (a file with the format's extension, or a folder). */
function outFile(format: Exclude<ExportFormat, 'hf'>, out: string): string {
  const { name, extensions } = FILES[format];
  const isFile = extensions.includes(extname(out).toLowerCase()) && !(existsSync(out) && statSync(out).isDirectory());
  return isFile ? out : join(out, name);
}

function makeParent(file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
  } catch (err) {
    throw new ArgumentError(FN, `cannot create the folder ${dirname(file)}: ${(err as Error).message}`, 'out');
  }
}

/** How Python loads a vision model's .pth, when the model is torchvision's own shape. */
function torchvisionNote(model: Module, file: string): string | null {
  if (!(model instanceof Architecture) || model instanceof TextModel) return null;
  if (model instanceof FasterRCNN) return detectorNote(model, file);
  const o = model.archOptions() as Record<string, unknown>;
  const plain = (o.width === undefined || o.width === 64) && (o.inChannels === undefined || o.inChannels === 3) && !o.smallStem;
  if (!plain)
    return `the names are torchvision's ${model.arch}, but its width/inChannels/smallStem differ from torchvision's, so the shapes do not fit torchvision's model`;
  const k = o.numClasses !== undefined ? `num_classes=${o.numClasses}` : '';
  return `torchvision: m = torchvision.models.${model.arch}(${k}); m.load_state_dict(torch.load('${basename(file)}', weights_only=True))`;
}

const snakeCase = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** torchvision's constructor call for the detector (its num_classes and every option that differs from torchvision's default). */
function detectorNote(model: FasterRCNN, file: string): string {
  const settings = model.settings as unknown as Record<string, unknown>;
  const kwargs = [`num_classes=${settings.numClasses}`];
  // trainableBackboneLayers and normLayer choose what trains, not what the weights compute: torchvision's eval needs neither
  const skip = ['numClasses', 'trainableBackboneLayers', 'normLayer'];
  for (const [name, fallback] of Object.entries(FASTER_RCNN_DEFAULTS))
    if (!skip.includes(name) && JSON.stringify(settings[name]) !== JSON.stringify(fallback))
      kwargs.push(`${snakeCase(name)}=${JSON.stringify(settings[name])}`);
  return (
    `torchvision: m = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, ${kwargs.join(', ')}); ` +
    `m.load_state_dict(torch.load('${basename(file)}', weights_only=True)); m.eval()`
  );
}

const isDetectorStateDict = (sd: StateDict): boolean => 'roi_heads.box_predictor.cls_score.weight' in sd && 'backbone.body.bn1.running_var' in sd;

/** A detector's tensors without its options: torchvision's call with the class count the box predictor has. */
function bareDetectorNote(sd: StateDict, file: string): string {
  const numClasses = sd['roi_heads.box_predictor.cls_score.weight'].shape[0];
  return (
    `torchvision: m = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=${numClasses}, ...); ` +
    `m.load_state_dict(torch.load('${basename(file)}', weights_only=True)); m.eval() ` +
    '(the file holds no options: give min_size, max_size and the thresholds the model was trained with)'
  );
}

/**
 * A detector's state dict as torchvision's weights=None model loads it
 * strictly: that model's body uses BatchNorm2d, which has a
 * num_batches_tracked counter, while finetorch's FrozenBatchNorm2d (normLayer
 * 'frozen') has none; a counter of 0 is added for each. torchvision's
 * FrozenBatchNorm2d drops the counters on loading, and in eval mode
 * BatchNorm2d with these running statistics computes what FrozenBatchNorm2d does.
 */
function withBatchNormCounters(sd: StateDict, notes: string[]): { sd: StateDict; added: Tensor[] } {
  const out: StateDict = {};
  const added: Tensor[] = [];
  for (const [name, t] of Object.entries(sd)) {
    out[name] = t;
    const counter = name.endsWith('.running_var') ? `${name.slice(0, -'running_var'.length)}num_batches_tracked` : null;
    if (counter && !(counter in sd)) {
      out[counter] = tensor(0, { dtype: 'int64' });
      added.push(out[counter]);
    }
  }
  if (added.length)
    notes.push(
      `${added.length} num_batches_tracked counters (0) were added beside the body's frozen batch norms, so torchvision's weights=None model (BatchNorm2d) loads the file with strict=True; in eval mode its batch norms compute what FrozenBatchNorm2d does`,
    );
  return { sd: out, added };
}

const DETECTOR_ARCH = 'fasterrcnn_resnet50_fpn';

/** torchscript/onnx/hf of a detector: refused, naming the format. */
function refuseDetector(format: ExportFormat): void {
  if (format === 'pth' || format === 'safetensors') return;
  throw new ArgumentError(
    FN,
    `to '${format}' is not available for a detector (${DETECTOR_ARCH}): its forward resizes images and picks proposals and boxes by data-dependent NMS, which a ${format === 'hf' ? 'Hugging Face folder' : 'trace'} does not hold; export it with to 'pth' (torchvision's fasterrcnn_resnet50_fpn loads it) or 'safetensors'`,
    'to',
  );
}

// Tokenizer files transformers' AutoTokenizer reads from a model folder.
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'added_tokens.json'];

/** Copies the run's tokenizer (a file or a folder) into the Hugging Face folder; returns the files written. */
function copyTokenizer(input: InputSpec | null, runDir: string | null, dir: string, notes: string[]): string[] {
  const given = input && 'tokenizer' in input ? input.tokenizer : undefined;
  if (typeof given !== 'string' || !given) {
    notes.push('no tokenizer was copied: the source does not name one (copy its files into the folder for AutoTokenizer)');
    return [];
  }
  const path = isAbsolute(given) || !runDir ? resolve(given) : resolve(runDir, given);
  if (!existsSync(path)) {
    notes.push(`no tokenizer was copied: ${path}, which the run was trained with, no longer exists`);
    return [];
  }
  const written: string[] = [];
  if (statSync(path).isDirectory()) {
    for (const f of TOKENIZER_FILES)
      if (existsSync(join(path, f))) {
        copyFileSync(join(path, f), join(dir, f));
        written.push(join(dir, f));
      }
  } else {
    // a single file: a tokenizer.json, or a WordPiece vocabulary
    const name = TOKENIZER_FILES.includes(basename(path)) ? basename(path) : extname(path) === '.json' ? 'tokenizer.json' : 'vocab.txt';
    copyFileSync(path, join(dir, name));
    written.push(join(dir, name));
  }
  // the lowercasing the run used, where no tokenizer_config.json says it
  const lowercase = input && 'lowercase' in input ? input.lowercase : undefined;
  if (written.length && !existsSync(join(dir, 'tokenizer_config.json')) && typeof lowercase === 'boolean') {
    const json = new TextEncoder().encode(JSON.stringify({ do_lower_case: lowercase }, null, 2) + '\n');
    writeAtomic(join(dir, 'tokenizer_config.json'), (fd) => writeAll(fd, json));
    written.push(join(dir, 'tokenizer_config.json'));
  }
  if (!written.length) notes.push(`no tokenizer was copied: ${path} holds none of ${TOKENIZER_FILES.join(', ')}`);
  return written;
}

function exportHf(model: Module | null, source: Source, dir: string, notes: string[]): string[] {
  if (!(model instanceof TextModel)) {
    const what = model instanceof Architecture ? `${model.arch} is not one` : 'this model is not one';
    throw new ArgumentError(
      FN,
      `to 'hf' writes a Hugging Face folder (config.json + model.safetensors) for the text models (bert, roberta, distilbert); ${what}: export it with to 'pth' (torch.load) or 'safetensors'`,
      'to',
    );
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ArgumentError(FN, `out ${dir} is a file; to 'hf' writes a folder`, 'out');
  let config: Record<string, unknown> | undefined;
  if (source.classes && model.task !== 'maskedLM' && model.task !== 'featureExtraction') {
    // the run's class names, so transformers' pipelines show them
    config = { ...structuredClone(model.hfConfig), id2label: Object.fromEntries(source.classes.map((c, i) => [String(i), c])) };
  }
  savePretrained(model, dir, { config });
  notes.push(`transformers: AutoModelFor${hfTask(model.task)}.from_pretrained('${dir}')`);
  return [join(dir, 'config.json'), join(dir, 'model.safetensors'), ...copyTokenizer(source.input, source.runDir, dir, notes)];
}

const hfTask = (task: string): string =>
  ({ sequenceClassification: 'SequenceClassification', tokenClassification: 'TokenClassification', maskedLM: 'MaskedLM' })[task] ?? '';

/**
 * An input shaped as the run's data, to trace with: images [1, C, H, W] at
 * the size the run fed the model; texts the model's inputs (inputIds,
 * attentionMask, ...) at its maxLength.
 */
export function exampleInputFor(model: Module, input: InputSpec | null): Tensor[] | null {
  if (!input) return null;
  if (input.kind === 'image') {
    // what the transforms end with: the centre crop, else the stretch, else the resized shorter side (square here)
    const hw = input.crop ? [input.crop, input.crop] : (input.size ?? (input.resize ? [input.resize, input.resize] : null));
    if (!hw) return null; // images left at their own size: the caller must say
    return [zeros([1, input.channels, hw[0], hw[1]])];
  }
  const length = 'maxLength' in input && typeof input.maxLength === 'number' ? input.maxLength : null;
  const names = model.inputNames;
  if (!length || !names) return null;
  return names
    .filter((n) => n !== 'maskedPositions' && n !== 'firstPieceIndex')
    .map((n) => (/mask/i.test(n) ? ones([1, length], { dtype: 'int64' }) : zeros([1, length], { dtype: 'int64' })));
}

/**
 * Writes the model of `source` in the format `to` names (see the top of this
 * file) and says what it wrote. A run's model is rebuilt from its run.json
 * and weights, then disposed; a Module passed in is left as it is.
 */
export async function exportModel(source: string | Module, options: ExportOptions): Promise<ExportResult> {
  if (options === null || typeof options !== 'object') throw new ArgumentError(FN, 'options must be an object { to, out? }', 'options');
  const format = options.to;
  if (!EXPORT_FORMATS.includes(format as ExportFormat))
    throw new ArgumentError(FN, `to must be one of ${EXPORT_FORMATS.join(', ')}; got ${JSON.stringify(format)}`, 'to');
  if (options.out !== undefined && (typeof options.out !== 'string' || !options.out)) throw new ArgumentError(FN, 'out must be a file or folder path', 'out');
  const src = openSource(source, format);
  try {
    let out = options.out;
    if (out === undefined) {
      if (!src.home) throw new ArgumentError(FN, 'out is needed when the source is a Module (a file or folder to write)', 'out');
      out = join(src.home, 'export', format === 'hf' ? 'hf' : '');
    }
    out = resolve(out);
    const notes: string[] = [];
    const model = src.model;
    if (model instanceof FasterRCNN) refuseDetector(format);
    if (format === 'hf') return { files: exportHf(model, src, out, notes), format, notes };
    const file = outFile(format, out);
    if (src.weights && resolve(src.weights) === file) throw new ArgumentError(FN, `out ${file} is the checkpoint being exported; choose another path`, 'out');
    makeParent(file);
    switch (format) {
      case 'pth': {
        const sd = model ? model.stateDict() : src.stateDict!;
        const countersNote: string[] = [];
        // a bare weights file of a detector (fit's checkpointDir without run.json) gets the counters too
        const detector = model instanceof FasterRCNN || (!model && isDetectorStateDict(sd));
        const counted = detector ? withBatchNormCounters(sd, countersNote) : { sd, added: [] };
        try {
          saveStateDict(counted.sd, file);
        } finally {
          counted.added.forEach((t) => t.dispose());
        }
        const note = model ? torchvisionNote(model, file) : detector ? bareDetectorNote(sd, file) : null;
        notes.push(note ?? `PyTorch: state_dict = torch.load('${basename(file)}', weights_only=True)`, ...countersNote);
        if (model instanceof TextModel) notes.push("the names are transformers' (model.load_state_dict(...) on the matching AutoModelFor* class)");
        break;
      }
      case 'safetensors':
        if (model instanceof Architecture) saveModel(model, file);
        else saveStateDict(model ? model.stateDict() : src.stateDict!, file);
        notes.push(
          `safetensors: safetensors.torch.load_file('${basename(file)}')${model instanceof Architecture ? '; finetorch: models.load(file) (the file names its architecture)' : ''}`,
        );
        if (model instanceof FasterRCNN && model.settings.normLayer === 'frozen')
          notes.push(
            "the names are torchvision's; the body's frozen batch norms carry no num_batches_tracked, so torchvision's weights=None model (BatchNorm2d) takes these tensors with strict=False (to 'pth' adds the counters for strict loading)",
          );
        break;
      case 'torchscript':
      case 'onnx': {
        // the run's input shape when no example is given (made here, so freed here)
        const made = options.exampleInput ? null : model ? exampleInputFor(model, src.input) : null;
        try {
          (format === 'onnx' ? exportOnnx : exportTorchScript)(model, options.exampleInput ?? made, file, notes);
        } finally {
          made?.forEach((t) => t.dispose());
        }
        break;
      }
    }
    return { files: [file], format, notes };
  } finally {
    if (src.owned) {
      src.model?.dispose();
      if (src.stateDict) Object.values(src.stateDict).forEach((t) => t.dispose());
    }
  }
}

// TorchScript and ONNX: traced with jit.trace / onnx.export (lib/io/jit.ts, lib/io/onnx.ts), in eval mode.
function traceInputs(format: string, model: Module | null, exampleInputs: Tensor[] | Tensor | null): Tensor[] | Tensor {
  if (!model) throw new ArgumentError(FN, `to '${format}' needs the model`, 'source');
  if (!exampleInputs)
    throw new ArgumentError(FN, `to '${format}' traces the model: give exampleInput (the source does not say its input shape)`, 'exampleInput');
  return exampleInputs;
}

/** What a tagger's traced forward gives (the CRF's Viterbi decoding depends on the data, so it is not in the trace). */
function taggerNote(model: Module, notes: string[]): void {
  if (typeof (model as { emissionsAndMask?: unknown }).emissionsAndMask === 'function')
    notes.push(
      "a tagger's traced forward gives the emissions [batch, length, tags]; the CRF's Viterbi decoding is not traced (its crf.* weights are in the state dict)",
    );
}

function exportTorchScript(model: Module | null, exampleInputs: Tensor[] | Tensor | null, file: string, notes: string[]): void {
  const traced = jit.trace(model as Module, traceInputs('torchscript', model, exampleInputs));
  try {
    jit.save(traced, file);
  } finally {
    traced.dispose();
  }
  const args = (model as Module).inputNames?.slice(0, Array.isArray(exampleInputs) ? exampleInputs.length : 1).join(', ') ?? 'x';
  notes.push(`PyTorch: m = torch.jit.load('${basename(file)}'); m.eval(); m(${args})`);
  taggerNote(model as Module, notes);
}

function exportOnnx(model: Module | null, exampleInputs: Tensor[] | Tensor | null, file: string, notes: string[]): void {
  const r = onnx.export(model as Module, traceInputs('onnx', model, exampleInputs), file, { dynamicBatch: true });
  notes.push(
    `onnxruntime: onnxruntime.InferenceSession('${basename(file)}').run(None, { ${r.inputNames.map((n) => `'${n}': ...`).join(', ')} }) (opset 17, any batch size)`,
  );
  taggerNote(model as Module, notes);
}
