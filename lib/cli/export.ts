// `finetorch export`: a trained model (a run folder, best/ or last/, or a
// weights file) written in a format Python loads: pth (torch.load),
// safetensors, hf (a Hugging Face folder, text models), torchscript, onnx.
import { EXPORT_FORMATS, exportModel, type ExportFormat } from '../export/index.js';
import { parseArgs, usageLines, type FlagSpec } from './args.js';
import { OUTPUT_FLAGS, fail, reporterFor, usageFailure } from './command.js';
import { EXIT, UsageError } from './errors.js';

const FLAGS: Record<string, FlagSpec> = {
  checkpoint: { type: 'string', arg: 'path', help: 'a run folder (uses best/, else last/), a checkpoint folder, or a weights file' },
  to: { type: 'string', arg: EXPORT_FORMATS.join('|'), help: 'the format to write' },
  out: { type: 'string', arg: 'path', help: 'a file, or a folder that receives model.<ext> (hf: the folder); default <run>/export/' },
  ...OUTPUT_FLAGS,
};

export const EXPORT_USAGE = `usage: finetorch export --checkpoint <run|checkpoint|weights> --to ${EXPORT_FORMATS.join('|')} [--out path]

${usageLines(FLAGS)}
`;

export async function exportCommand(argv: string[]): Promise<number> {
  const started = Date.now();
  let args;
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
    if (args.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`, 'export');
    if (!args.flags.checkpoint) throw new UsageError('give --checkpoint <run folder, best/ or last/, or weights file>', 'export');
    const to = args.flags.to as string | undefined;
    if (!to) throw new UsageError(`give --to ${EXPORT_FORMATS.join('|')}`, 'export');
    if (!EXPORT_FORMATS.includes(to as ExportFormat)) throw new UsageError(`--to: expected one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(to)}`, 'export');
    const r = await exportModel(args.flags.checkpoint as string, { to: to as ExportFormat, out: args.flags.out as string | undefined });
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
