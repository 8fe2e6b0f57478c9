// Recipe fields that hold paths. A recipe file's relative paths are relative
// to the file's folder; runRecipe's to its `baseDir`.
import { isAbsolute, resolve } from 'node:path';

export const PATH_FIELDS = [
  'model.checkpoint',
  'model.config',
  'data.root',
  'data.valRoot',
  'data.testRoot',
  'data.dir',
  'data.path',
  'data.valPath',
  'data.testPath',
  'data.tokenizer',
  'data.annotations',
  'data.images',
  'data.valAnnotations',
  'data.valImages',
  'data.testAnnotations',
  'data.testImages',
  'out',
  'tensorboard',
];

/** Makes the path fields of a raw recipe object absolute, relative to `base` (in place). */
export function resolvePaths(recipe: Record<string, unknown>, base: string): void {
  for (const f of PATH_FIELDS) {
    const keys = f.split('.');
    let parent: unknown = recipe;
    for (const k of keys.slice(0, -1))
      parent = parent && typeof parent === 'object' && Object.hasOwn(parent, k) ? (parent as Record<string, unknown>)[k] : undefined;
    if (!parent || typeof parent !== 'object') continue;
    const last = keys[keys.length - 1];
    const v = Object.hasOwn(parent, last) ? (parent as Record<string, unknown>)[last] : undefined;
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) (parent as Record<string, unknown>)[last] = resolve(base, v);
  }
}
