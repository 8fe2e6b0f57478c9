#!/usr/bin/env node
// The `finetorch` command. Each subcommand is imported when it runs, so
// `finetorch doctor` can still report when the native addon does not load.
import { EXIT } from './errors.js';

// A reader that goes away (`finetorch eval ... | head -1`) ends the command
// quietly, as Unix tools do: they die of SIGPIPE, which a shell reports as
// 128 + 13 = 141 (what `set -o pipefail` sees from `yes | head -1`). Node
// ignores SIGPIPE and reports a failed write as an EPIPE error event instead;
// unhandled, that was a stack trace and exit 1.
const EXIT_BROKEN_PIPE = 141;
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE);
    throw err;
  });
}

const USAGE = `usage: finetorch <command> [options]

commands:
  train --config <recipe.json|yaml>     fine-tune as the recipe says (checkpoints, test metrics); --resume <out>/last continues
  pretrain --config <pretrain.yaml>     masked-language modelling (text) or reconstruction (images) on unlabelled data; --resume <out>/last continues
  eval --checkpoint <run|dir|file>      metrics of a trained model on the recipe's test (or --split val|train) data
  predict --checkpoint <...> <inputs>   classify image files/folders or a CSV/JSONL of texts (or --text "..."); a tagger prints entity spans;
                                        a detector lists boxes and draws them onto PNGs (--out DIR, --score-thresh)
  export --checkpoint <...> --to <fmt>  write the trained model for Python: pth (torch.load), safetensors, hf (text models), torchscript, onnx
  lr-find --config <recipe.yaml>        the LR range test (fastai's lr_find): loss vs LR plot and a suggested LR
  inspect <checkpoint> [--json]         format, architecture guess, parameter count, dtypes, blocks and head
  doctor [--json]                       libtorch (where, version, CPU/CUDA), CUDA devices, threads, BLAS, prebuilt or source build
  demo                                  the fine-tuning comparison on Fashion-MNIST
  dashboard <runs...>                   live web page: loss/LR/metric curves, confusion matrix, per-class metrics, run comparison

Run finetorch <command> --help for its options. Output is JSON Lines when stdout
is not a terminal (or with --json); exit codes: 0 ok, 1 runtime error, 2 usage or
bad recipe, 3 data error, 4 training diverged, 130 interrupted, 141 the reader of
stdout went away (docs/cli.md).
`;

async function inspectCommand(rest: string[]): Promise<number> {
  const json = rest.includes('--json');
  const files = rest.filter((a) => a !== '--json');
  if (files.length !== 1 || files[0].startsWith('--')) {
    process.stderr.write('finetorch inspect: expected one checkpoint path\n' + USAGE);
    return EXIT.usage;
  }
  const { inspect, formatReport } = await import('./inspect.js');
  try {
    const report = inspect(files[0]);
    process.stdout.write((json ? JSON.stringify(report) : formatReport(report)) + '\n');
    return EXIT.ok;
  } catch (err) {
    process.stderr.write(`finetorch inspect: ${(err as Error).message}\n`);
    return EXIT.runtime;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === '--version' || command === '-v') {
    const { finetorchVersion } = await import('../recipes/run-record.js');
    process.stdout.write(finetorchVersion() + '\n');
    return EXIT.ok;
  }
  switch (command) {
    case 'train':
      return (await import('./train.js')).trainCommand(rest);
    case 'pretrain':
      return (await import('./pretrain.js')).pretrainCommand(rest);
    case 'eval':
      return (await import('./evaluate.js')).evalCommand(rest);
    case 'predict':
      return (await import('./evaluate.js')).predictCommand(rest);
    case 'lr-find':
      return (await import('./lr-find.js')).lrFindCommand(rest);
    case 'doctor':
      return (await import('./doctor.js')).doctorCommand(rest);
    case 'export':
      return (await import('./export.js')).exportCommand(rest);
    case 'inspect':
      return inspectCommand(rest);
    case 'demo':
      return (await import('./demo/index.js')).demoCommand(rest);
    case 'dashboard':
      return (await import('./dashboard.js')).dashboardCommand(rest);
    default:
      process.stderr.write(`finetorch: unknown command '${command}'\n` + USAGE);
      return EXIT.usage;
  }
}

const code = await main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`finetorch: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT.runtime;
});
process.exitCode = code;
// native worker threads or prefetching loaders must not keep a finished command alive
setTimeout(() => process.exit(code), 2000).unref();
