// Recipe files (JSON or YAML) for the CLI: read, relative paths resolved
// against the file's folder, flag overrides applied, validated. A problem in
// a field set by a flag names the flag too.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { PATH_FIELDS, resolvePaths } from '../recipes/paths.js';
import { parse as parseYaml } from 'yaml';
import { parseRecipe, RecipeError, formatIssue, type Recipe } from '../recipes/schema.js';
import { ConfigError, UsageError } from './errors.js';
import { setPath, type Override } from './args.js';

export { PATH_FIELDS, resolvePaths } from '../recipes/paths.js';

/** Reads a recipe file (.json, .yaml, .yml; other names: JSON, else YAML) into a plain object. */
export function readRecipeFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new UsageError(`--config: ${path} does not exist`);
  if (statSync(path).isDirectory()) throw new UsageError(`--config: ${path} is a folder; give the recipe file (.json, .yaml or .yml)`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  const ext = extname(path).toLowerCase();
  let value: unknown;
  if (ext === '.json' || (ext !== '.yaml' && ext !== '.yml' && text.trimStart().startsWith('{'))) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(path, `not valid JSON: ${(err as Error).message}`);
    }
  } else {
    try {
      value = parseYaml(text, { prettyErrors: true });
    } catch (err) {
      throw new ConfigError(path, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(path, `expected a recipe object at the top level, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

/**
 * The recipe from a file (or a starting object, e.g. a run's saved recipe)
 * with the overrides applied. Paths in the file are relative to its folder,
 * paths given by flags to the working directory.
 */
export function loadRecipe(source: { file?: string; object?: Record<string, unknown> }, overrides: Override[]): Recipe {
  const raw = source.file ? readRecipeFile(source.file) : structuredClone(source.object ?? {});
  if (source.file) resolvePaths(raw, dirname(resolve(source.file)));
  const flagged = new Map<string, string>();
  for (const o of overrides) {
    const key = o.path.join('.');
    // paths given by flags: relative to the working directory
    setPath(raw, PATH_FIELDS.includes(key) && typeof o.value === 'string' ? { ...o, value: resolve(o.value) } : o);
    flagged.set(key, o.from);
  }
  try {
    return parseRecipe(raw);
  } catch (err) {
    if (!(err instanceof RecipeError)) throw err;
    // name the flag that set a field
    const issues = err.issues.map((i) => {
      const key = i.keys.join('.');
      const from = [...flagged.entries()].find(([k]) => key === k || key.startsWith(k + '.') || k.startsWith(key + '.'))?.[1];
      return { ...i, message: from ? `${i.message} [set by ${from}]` : i.message };
    });
    const where = source.file ? ` (${source.file})` : '';
    throw new RecipeError(issues, `invalid recipe${where}:\n  ${issues.map(formatIssue).join('\n  ')}`);
  }
}
