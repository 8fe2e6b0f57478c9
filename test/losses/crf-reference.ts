// Runs a job of crf_reference.py (the PyTorch references of the CRF, the
// focal token loss and the taggers) and returns its JSON result.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const script = join(__dirname, 'crf_reference.py');

/** One job in Debian's Python (python3-torch), or `python` (one with transformers, for the BERT tagger). */
export function pythonReference<T>(job: Record<string, unknown>, python = '/usr/bin/python3'): T {
  const out = execFileSync(python, [script], { input: JSON.stringify(job), encoding: 'utf8', timeout: 300000, maxBuffer: 1 << 28 });
  return JSON.parse(out) as T;
}
