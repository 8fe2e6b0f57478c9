// Command-line parsing for the finetorch CLI: typed flags (--name value,
// --name=value), repeatable flags, positionals after them or mixed in, and
// recipe overrides (--epochs, --lr, ..., --set a.b.c=value). Every problem is
// a UsageError that names the flag, the value and what was expected.
import { UsageError } from './errors.js';
import { PROTOTYPE_KEYS } from '../recipes/schema.js';

export type FlagType = 'boolean' | 'string' | 'int' | 'positiveInt' | 'positiveNumber';

export interface FlagSpec {
  type: FlagType;
  /** May be given more than once (values collected in order). */
  repeat?: boolean;
  /** One line for the usage text. */
  help: string;
  /** Placeholder in the usage text. */
  arg?: string;
}

export type FlagValues = Record<string, string | number | boolean | Array<string | number> | undefined>;

export interface ParsedArgs {
  flags: FlagValues;
  positionals: string[];
}

const EXPECTED: Record<FlagType, string> = {
  boolean: 'no value',
  string: 'a value',
  int: 'an integer',
  positiveInt: 'a positive integer',
  positiveNumber: 'a positive number',
};

function convert(name: string, type: FlagType, raw: string): string | number {
  if (type === 'string') return raw;
  const n = Number(raw);
  const ok = raw.trim() !== '' && Number.isFinite(n) && (type === 'int' ? Number.isInteger(n) : type === 'positiveInt' ? Number.isInteger(n) && n > 0 : n > 0);
  if (!ok) throw new UsageError(`--${name}: expected ${EXPECTED[type]}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Parses argv against the command's flags. */
export function parseArgs(command: string, argv: string[], spec: Record<string, FlagSpec>): ParsedArgs {
  const flags: FlagValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '-') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a))
        throw new UsageError(`unknown option ${a} (options are --long-names; see finetorch ${command} --help)`, command);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) {
      const known = Object.keys(spec)
        .map((k) => `--${k}`)
        .join(', ');
      throw new UsageError(`unknown option --${name} (options: ${known})`, command);
    }
    let value: string | number | boolean;
    if (s.type === 'boolean') {
      if (eq > 0) {
        const raw = a.slice(eq + 1);
        if (raw !== 'true' && raw !== 'false') throw new UsageError(`--${name}: expected true or false, got ${JSON.stringify(raw)}`);
        value = raw === 'true';
      } else value = true;
    } else {
      let raw: string;
      if (eq > 0) raw = a.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`--${name}: expected ${EXPECTED[s.type]}${s.arg ? ` (${s.arg})` : ''}, got nothing`);
        raw = argv[++i];
      }
      value = convert(name, s.type, raw);
    }
    if (s.repeat) ((flags[name] ??= []) as Array<string | number>).push(value as string | number);
    else {
      if (flags[name] !== undefined) throw new UsageError(`--${name} is given twice`);
      flags[name] = value;
    }
  }
  return { flags, positionals };
}

export function usageLines(spec: Record<string, FlagSpec>): string {
  return Object.entries(spec)
    .map(([name, s]) => {
      const left = `  --${name}${s.type === 'boolean' ? '' : ` <${s.arg ?? 'value'}>`}`;
      return `${left.padEnd(28)} ${s.help}`;
    })
    .join('\n');
}

// ---- recipe overrides

/** One change to the recipe object and the flag it came from. */
export interface Override {
  path: string[];
  value: unknown;
  from: string /** keys removed from the parent first */;
  unset?: string[];
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$|^\d+$/;

/** --set's value: JSON when it parses (numbers, booleans, arrays, objects, quoted strings; null removes the field), else the text itself. */
export function parseSetValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Parses `a.b.c=value` of --set. */
export function parseSet(arg: string): Override {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set: expected field.path=value, got ${JSON.stringify(arg)}`);
  const path = arg.slice(0, eq).split('.');
  const proto = path.find((p) => PROTOTYPE_KEYS.includes(p));
  if (proto !== undefined) throw new UsageError(`--set: "${proto}" in ${JSON.stringify(arg.slice(0, eq))} is not a recipe field (prototype keys are refused)`);
  const bad = path.find((p) => !SEGMENT.test(p));
  if (bad !== undefined)
    throw new UsageError(`--set: ${JSON.stringify(arg.slice(0, eq))} is not a field path (expected names joined by dots, e.g. optimizer.lr)`);
  return { path, value: parseSetValue(arg.slice(eq + 1)), from: `--set ${arg}` };
}

/** Writes value at path (creating objects on the way); a non-object in the way is a UsageError. */
export function setPath(target: Record<string, unknown>, o: Override): void {
  const proto = o.path.find((k) => PROTOTYPE_KEYS.includes(k));
  if (proto !== undefined) throw new UsageError(`${o.from}: "${proto}" is not a recipe field (prototype keys are refused)`);
  let node: Record<string, unknown> = target;
  for (let i = 0; i < o.path.length - 1; i++) {
    const k = o.path[i];
    if (node[k] === undefined || node[k] === null) node[k] = /^\d+$/.test(o.path[i + 1]) ? [] : {};
    const next = node[k];
    if (typeof next !== 'object') throw new UsageError(`${o.from}: recipe.${o.path.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object`);
    node = next as Record<string, unknown>;
  }
  for (const k of o.unset ?? []) delete node[k];
  // null removes the field (the recipe has no nullable fields)
  if (o.value === null) delete node[o.path[o.path.length - 1]];
  else node[o.path[o.path.length - 1]] = o.value;
}

/** The overrides the shared recipe flags ask for, in the order they apply (named flags, then --set). */
export function recipeOverrides(flags: FlagValues): Override[] {
  const out: Override[] = [];
  if (flags.epochs !== undefined) out.push({ path: ['epochs'], value: flags.epochs, from: '--epochs' });
  if (flags['batch-size'] !== undefined) out.push({ path: ['batchSize'], value: flags['batch-size'], from: '--batch-size' });
  // one LR for every group: replaces differential LRs of the recipe
  if (flags.lr !== undefined) out.push({ path: ['optimizer', 'lr'], value: flags.lr, from: '--lr', unset: ['bottomLr', 'topLr', 'lrs'] });
  if (flags.seed !== undefined) out.push({ path: ['seed'], value: flags.seed, from: '--seed' });
  if (flags.out !== undefined) out.push({ path: ['out'], value: flags.out, from: '--out' });
  if (flags.device !== undefined) out.push({ path: ['device'], value: flags.device, from: '--device' });
  for (const s of (flags.set as string[] | undefined) ?? []) out.push(parseSet(s));
  return out;
}
