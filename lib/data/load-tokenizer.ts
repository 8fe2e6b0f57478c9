// Finding and loading a tokenizer from what a model folder or recipe names:
// vocab.txt (WordPiece), tokenizer.json (WordPiece or byte-level BPE), or a
// folder holding one of them or vocab.json + merges.txt (RoBERTa).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { WordPieceTokenizer } from './tokenizer.js';
import { ByteLevelBPETokenizer } from './tokenizer-bpe.js';

export type Tokenizer = WordPieceTokenizer | ByteLevelBPETokenizer;

/** A tokenizer from a file or folder; `lowercase` applies to a plain vocab.txt (tokenizer.json says it itself). */
export function loadTokenizer(path: string, options: { lowercase?: boolean } = {}): Tokenizer {
  if (!existsSync(path)) throw new DataError(`tokenizer ${path} does not exist`, { path });
  let file = path;
  if (statSync(path).isDirectory()) {
    const found = ['tokenizer.json', 'vocab.txt'].map((f) => join(path, f)).find((f) => existsSync(f));
    if (found) file = found;
    else if (existsSync(join(path, 'vocab.json')) && existsSync(join(path, 'merges.txt')))
      return ByteLevelBPETokenizer.fromFiles(join(path, 'vocab.json'), join(path, 'merges.txt'));
    else throw new DataError(`tokenizer folder ${path} has none of tokenizer.json, vocab.txt, vocab.json + merges.txt`, { path });
  }
  if (file.endsWith('.json')) {
    let type: unknown;
    try {
      type = JSON.parse(readFileSync(file, 'utf8'))?.model?.type;
    } catch (err) {
      throw new DataError(`${file}: not JSON: ${(err as Error).message}`, { path: file, cause: err });
    }
    if (type === 'BPE') return ByteLevelBPETokenizer.fromTokenizerJson(file);
    if (type === 'WordPiece') return WordPieceTokenizer.fromTokenizerJson(file);
    throw new DataError(`${file}: tokenizer model type ${JSON.stringify(type)} is not supported (WordPiece, BPE)`, { path: file });
  }
  return WordPieceTokenizer.fromVocabFile(file, options.lowercase === undefined ? {} : { lowercase: options.lowercase });
}
