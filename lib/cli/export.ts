// `finetorch export`: a trained model (a run folder, best/ or last/, or a
// weights file) written in a format Python loads: pth (torch.load),
// safetensors, hf (a Hugging Face folder, text models), torchscript, onnx
// (detectors: pth, which torchvision's fasterrcnn_resnet50_fpn loads, or safetensors).
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { ExportFormat } from '../export/index.js';
import { parseArgs, usageLines, type FlagSpec, type ParsedArgs } from './args.js';
import { OUTPUT_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';

// the formats, here so that a bad command line is answered without loading libtorch (exportModel is imported when it runs)
const EXPORT_FORMATS: readonly ExportFormat[] = ['pth', 'safetensors', 'hf', 'torchscript', 'onnx'];

const FLAGS: Record<string, FlagSpec> = {
  checkpoint: { type: 'string', arg: 'path', help: 'a run folder (uses best/, else last/), a checkpoint folder, or a weights file' },
  to: { type: 'string', arg: 'format', help: `the format to write: ${EXPORT_FORMATS.join(', ')} (a detector: pth or safetensors)` },
  out: { type: 'string', arg: 'path', help: 'a file, or a folder that receives model.<ext> (hf: the folder); default <run>/export/' },
  ...OUTPUT_FLAGS,
};

export const EXPORT_USAGE = `usage: finetorch export --checkpoint <run|checkpoint|weights> --to ${EXPORT_FORMATS.join('|')} [--out path]

${usageLines(FLAGS)}
`;

export async function exportCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  let args: ParsedArgs;
  try {
    args = parseArgs('export', argv, FLAGS);
  } catch (err) {
    return usageFailure('export', argv, err, EXPORT_USAGE);
  }
  if (args.flags.help) {
    process.stdout.write(EXPORT_USAGE);
    return EXIT.ok;
  }
  const reporter = reporterFor('export', args.flags);
  try {
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
    if (!args.flags.checkpoint) throw new UsageError('give --checkpoint <run folder, best/ or last/, or weights file>');
    const checkpoint = args.flags.checkpoint as string;
    // (a best/ or last/ left between two renames by a killed run is recovered by exportModel)
    if (!existsSync(checkpoint) && !['best', 'last'].includes(basename(resolve(checkpoint))))
      throw new UsageError(`--checkpoint ${checkpoint}: does not exist`);
    const to = args.flags.to as string | undefined;
    if (!to) throw new UsageError(`give --to ${EXPORT_FORMATS.join('|')}`);
    if (!EXPORT_FORMATS.includes(to as ExportFormat)) throw new UsageError(`--to: expected one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(to)}`);
    const { exportModel } = await import('../export/index.js');
    const r = await exportModel(checkpoint, { to: to as ExportFormat, out: args.flags.out as string | undefined });
    if (reporter.json) reporter.emit({ type: 'export', format: r.format, files: r.files, notes: r.notes });
    else {
      for (const f of r.files) reporter.message(`wrote ${f}`);
      for (const n of r.notes) reporter.message(n);
    }
    reporter.emit({ type: 'end', status: 'ok', exitCode: EXIT.ok, seconds: (Date.now() - started) / 1000 });
    return EXIT.ok;
  } catch (err) {
    return fail(reporter, err, started);
  }
}
