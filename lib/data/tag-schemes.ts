// Tag schemes for sequence labelling (IOB1, IOB2 = BIO, IOE1, IOE2, IOBES,
// BILOU): entity extraction with seqeval 1.2.2's semantics, conversion
// between schemes and validation. Entities are word spans, end exclusive.
//
// Two ways to read entities, as seqeval does:
// - 'default' (conlleval's chunking as seqeval extends it with E-/S- rules;
//   lenient): a B-/S- starts an entity, so does an I-/E- after O, E- or S-,
//   and any change of type; an E-/S- ends one, so does a B-/S-/O after B-/I-,
//   and any change of type. On B-/I-/O tags it counts what conlleval.pl
//   counts. It reads every scheme's well-formed sequences correctly and makes
//   an entity out of ill-formed pieces (an I- after O). It knows no L-/U-, so
//   with scheme 'BILOU' they are read as E-/S-.
// - 'strict' (per scheme): an entity is only what the scheme allows, e.g. in
//   IOB2 it must start with B-; pieces that do not form one are dropped.
import { ArgumentError, DataError } from '../errors.js';

export type TagScheme = 'IOB1' | 'IOB2' | 'BIO' | 'IOE1' | 'IOE2' | 'IOBES' | 'BILOU';
export const TAG_SCHEMES: readonly TagScheme[] = ['IOB1', 'IOB2', 'BIO', 'IOE1', 'IOE2', 'IOBES', 'BILOU'];

export interface Entity {
  type: string;
  /** Index of the entity's first word. */
  start: number;
  /** Index after its last word (exclusive). */
  end: number;
}

export interface EntityOptions {
  mode?: 'default' | 'strict';
  /** Needed in strict mode; in default mode only 'BILOU' changes anything. */
  scheme?: TagScheme;
  /** Tags written type first, prefix last ('PER-B'), as seqeval's suffix=True. */
  suffix?: boolean;
}

export type Canonical = Exclude<TagScheme, 'BIO'>;

/** The scheme's canonical name (BIO is IOB2), or an ArgumentError naming the bad value. */
export function canonicalScheme(scheme: unknown, fn: string): Canonical {
  if (scheme === 'BIO') return 'IOB2';
  if (typeof scheme === 'string' && (TAG_SCHEMES as readonly string[]).includes(scheme)) return scheme as Canonical;
  throw new ArgumentError(fn, `unknown tag scheme ${JSON.stringify(scheme)}: expected one of ${TAG_SCHEMES.join(', ')}`, 'scheme');
}

/** The prefixes each scheme uses, O included (seqeval's allowed_prefix). */
export const SCHEME_PREFIXES: Readonly<Record<Canonical, string>> = {
  IOB1: 'IOB',
  IOB2: 'IOB',
  IOE1: 'IOE',
  IOE2: 'IOE',
  IOBES: 'IOBES',
  BILOU: 'BILOU',
};

/** A tag split into its one-letter prefix and its type ('_' when it has none). */
export interface ParsedTag {
  prefix: string;
  type: string;
}

function checkTag(tag: unknown, where: () => string): asserts tag is string {
  if (typeof tag !== 'string' || tag.length === 0) throw new DataError(`${where()}: expected a non-empty tag string, got ${JSON.stringify(tag)}`);
}

// conlleval/seqeval default-mode parsing: the type is what follows the first
// '-' after the prefix (or the whole rest when there is no '-').
function parseLenient(tag: string, suffix: boolean): ParsedTag {
  if (suffix) {
    const body = tag.slice(0, -1);
    const dash = body.lastIndexOf('-');
    return { prefix: tag[tag.length - 1], type: (dash < 0 ? body : body.slice(0, dash)) || '_' };
  }
  const body = tag.slice(1);
  const dash = body.indexOf('-');
  return { prefix: tag[0], type: (dash < 0 ? body : body.slice(dash + 1)) || '_' };
}

// seqeval strict-mode parsing: the rest of the tag with '-' stripped off both ends.
function parseStrict(tag: string, suffix: boolean): ParsedTag {
  const body = suffix ? tag.slice(0, -1) : tag.slice(1);
  return { prefix: suffix ? tag[tag.length - 1] : tag[0], type: body.replace(/^-+|-+$/g, '') || '_' };
}

/**
 * conlleval's chunking over one flat list of tags (seqeval's get_entities):
 * returns [type, start, end) triples. The state starts with type '' so that
 * it matches no parsed type (seqeval starts with prev_type '').
 */
export function conllChunks(tags: readonly string[], options: { suffix?: boolean; bilou?: boolean } = {}): Entity[] {
  const out: Entity[] = [];
  let prev: ParsedTag = { prefix: 'O', type: '' };
  let begin = 0;
  for (let i = 0; i <= tags.length; i++) {
    const cur = i < tags.length ? parseLenient(tags[i], options.suffix ?? false) : { prefix: 'O', type: '_' };
    if (options.bilou) cur.prefix = cur.prefix === 'L' ? 'E' : cur.prefix === 'U' ? 'S' : cur.prefix;
    const typeChanged = prev.type !== cur.type;
    const ends =
      prev.prefix === 'E' ||
      prev.prefix === 'S' ||
      ((prev.prefix === 'B' || prev.prefix === 'I') && (cur.prefix === 'B' || cur.prefix === 'S' || cur.prefix === 'O')) ||
      (prev.prefix !== 'O' && prev.prefix !== '.' && typeChanged);
    const starts =
      cur.prefix === 'B' ||
      cur.prefix === 'S' ||
      ((prev.prefix === 'E' || prev.prefix === 'S' || prev.prefix === 'O') && (cur.prefix === 'E' || cur.prefix === 'I')) ||
      (cur.prefix !== 'O' && cur.prefix !== '.' && typeChanged);
    if (ends) out.push({ type: prev.type, start: begin, end: i });
    if (starts) begin = i;
    prev = cur;
  }
  return out;
}

// seqeval's strict patterns, one string per pattern: previous prefix(es),
// '>', current prefix(es), then '=' when the types must be the same, '!' when
// they must differ (nothing: either); '*' is any prefix.
interface StrictRules {
  start: string[];
  inside: string[];
  end: string[];
}
const STRICT_RULES: Record<Canonical, StrictRules> = {
  IOB1: {
    start: ['O>I', 'I>I!', 'B>I', 'I>B=', 'B>B='],
    inside: ['B>I=', 'I>I='],
    end: ['I>I!', 'I>O', 'I>B', 'B>O', 'B>I!', 'B>B='],
  },
  IOE1: {
    start: ['O>I', 'I>I!', 'E>I', 'E>E='],
    inside: ['I>I=', 'I>E='],
    end: ['I>I!', 'I>O', 'I>E!', 'E>I=', 'E>E='],
  },
  IOB2: {
    start: ['*>B'],
    inside: ['B>I=', 'I>I='],
    end: ['I>O', 'I>I!', 'I>B', 'B>O', 'B>I!', 'B>B'],
  },
  IOE2: {
    start: ['O>I', 'O>E', 'E>I', 'E>E', 'I>I!', 'I>E!'],
    inside: ['I>E=', 'I>I='],
    end: ['E>*'],
  },
  IOBES: {
    start: ['*>B', '*>S'],
    inside: ['B>I=', 'B>E=', 'I>I=', 'I>E='],
    end: ['S>*', 'E>*'],
  },
  BILOU: {
    start: ['*>B', '*>U'],
    inside: ['B>I=', 'B>L=', 'I>I=', 'I>L='],
    end: ['U>*', 'L>*'],
  },
};

interface Pattern {
  prev: string;
  cur: string;
  relation: '=' | '!' | undefined;
}
const compiled = new Map<string[], Pattern[]>();

function matches(patterns: string[], prev: ParsedTag, cur: ParsedTag): boolean {
  let list = compiled.get(patterns);
  if (!list) {
    list = patterns.map((text) => {
      const [p, rest] = text.split('>');
      return { prev: p, cur: rest[0], relation: rest[1] as Pattern['relation'] };
    });
    compiled.set(patterns, list);
  }
  for (const { prev: p, cur: c, relation } of list) {
    if ((p === '*' || p === prev.prefix) && (c === '*' || c === cur.prefix) && (relation === undefined || (relation === '=') === (prev.type === cur.type)))
      return true;
  }
  return false;
}

/** seqeval's Token.is_start / is_inside / is_end of tag `cur` after tag `prev` (for tests against seqeval's own tables). */
export function strictTransition(prev: string, cur: string, scheme: TagScheme): [start: boolean, inside: boolean, end: boolean] {
  const rules = STRICT_RULES[canonicalScheme(scheme, 'strictTransition')];
  const p = parseStrict(prev, false);
  const c = parseStrict(cur, false);
  return [matches(rules.start, p, c), matches(rules.inside, p, c), matches(rules.end, p, c)];
}

/**
 * Strict entities of one sentence (seqeval's Tokens.entities): from each
 * start, extend over inside tags; keep the span only if the scheme says it
 * ended there; carry on after it either way.
 */
export function strictChunks(tokens: ParsedTag[], scheme: Canonical): Entity[] {
  const rules = STRICT_RULES[scheme];
  const outside: ParsedTag = { prefix: 'O', type: '_' };
  const ext = [...tokens, outside];
  const out: Entity[] = [];
  let i = 0;
  while (i < ext.length) {
    const prev = i === 0 ? outside : ext[i - 1];
    if (!matches(rules.start, prev, ext[i])) {
      i++;
      continue;
    }
    let end = i + 1;
    // The trailing O is never inside, so this stops within ext.
    while (matches(rules.inside, ext[end - 1], ext[end])) end++;
    if (matches(rules.end, ext[end - 1], ext[end])) out.push({ type: ext[i].type, start: i, end });
    i = end;
  }
  return out;
}

/** Parses tags for strict mode, with an error naming the first tag whose prefix the scheme does not use. */
export function parseStrictTags(tags: readonly unknown[], scheme: Canonical, suffix: boolean, where: (i: number) => string): ParsedTag[] {
  const allowed = SCHEME_PREFIXES[scheme];
  return tags.map((tag, i) => {
    checkTag(tag, () => where(i));
    const parsed = parseStrict(tag, suffix);
    if (!allowed.includes(parsed.prefix))
      throw new DataError(
        `${where(i)}: tag '${tag}' has prefix '${parsed.prefix}', which ${scheme} does not use (its prefixes: ${allowed.split('').join(', ')})`,
      );
    return parsed;
  });
}

/**
 * The entities of one sentence's tags, as `{ type, start, end }` (end
 * exclusive), in order. mode 'default' (conlleval, lenient) or 'strict'
 * (needs `scheme`; a prefix the scheme does not use is an error).
 */
export function getEntities(tags: readonly string[], options: EntityOptions = {}): Entity[] {
  if (!Array.isArray(tags)) throw new ArgumentError('getEntities', 'tags must be an array of tag strings');
  const mode = options.mode ?? 'default';
  const suffix = options.suffix ?? false;
  const where = (i: number) => `getEntities: tag ${i}`;
  if (mode === 'strict') {
    if (options.scheme === undefined) throw new ArgumentError('getEntities', "mode 'strict' needs a scheme (IOB2, IOBES, ...)", 'scheme');
    const scheme = canonicalScheme(options.scheme, 'getEntities');
    return strictChunks(parseStrictTags(tags, scheme, suffix, where), scheme);
  }
  if (mode !== 'default') throw new ArgumentError('getEntities', `mode must be 'default' or 'strict', got ${JSON.stringify(mode)}`, 'mode');
  const scheme = options.scheme === undefined ? undefined : canonicalScheme(options.scheme, 'getEntities');
  tags.forEach((t, i) => checkTag(t, () => where(i)));
  return conllChunks(tags, { suffix, bilou: scheme === 'BILOU' });
}

function render(prefix: string, type: string, suffix: boolean): string {
  if (type === '_') return prefix; // a tag without a type ('B', 'I') stays without one
  return suffix ? `${type}-${prefix}` : `${prefix}-${type}`;
}

/**
 * Writes entities as tags of a scheme over `length` words ('O' elsewhere).
 * Entities must lie inside the sequence, be non-empty and not overlap.
 */
export function entitiesToTags(entities: readonly Entity[], length: number, scheme: TagScheme, options: { suffix?: boolean } = {}): string[] {
  const s = canonicalScheme(scheme, 'entitiesToTags');
  const suffix = options.suffix ?? false;
  if (!Number.isInteger(length) || length < 0) throw new ArgumentError('entitiesToTags', `length must be a non-negative integer, got ${length}`, 'length');
  const sorted = [...entities].sort((a, b) => a.start - b.start);
  const tags = new Array<string>(length).fill('O');
  sorted.forEach((e, k) => {
    const what = `entity ${JSON.stringify(e)}`;
    if (!Number.isInteger(e.start) || !Number.isInteger(e.end) || e.start < 0 || e.end > length || e.start >= e.end)
      throw new DataError(`entitiesToTags: ${what} is empty or outside the ${length} words (need 0 <= start < end <= ${length})`);
    if (typeof e.type !== 'string' || e.type === '') throw new DataError(`entitiesToTags: ${what} needs a non-empty type`);
    const before = sorted[k - 1];
    if (before && before.end > e.start) throw new DataError(`entitiesToTags: ${what} overlaps ${JSON.stringify(before)}`);
    const after = sorted[k + 1];
    // IOB1 and IOE1 mark a boundary only between touching entities of one type.
    const touchesBefore = before !== undefined && before.end === e.start && before.type === e.type;
    const touchesAfter = after !== undefined && after.start === e.end && after.type === e.type;
    const n = e.end - e.start;
    for (let j = 0; j < n; j++) {
      const first = j === 0;
      const last = j === n - 1;
      let prefix: string;
      switch (s) {
        case 'IOB1':
          prefix = first && touchesBefore ? 'B' : 'I';
          break;
        case 'IOB2':
          prefix = first ? 'B' : 'I';
          break;
        case 'IOE1':
          prefix = last && touchesAfter ? 'E' : 'I';
          break;
        case 'IOE2':
          prefix = last ? 'E' : 'I';
          break;
        case 'IOBES':
          prefix = n === 1 ? 'S' : first ? 'B' : last ? 'E' : 'I';
          break;
        case 'BILOU':
          prefix = n === 1 ? 'U' : first ? 'B' : last ? 'L' : 'I';
          break;
      }
      tags[e.start + j] = render(prefix, e.type, suffix);
    }
  });
  return tags;
}

function checkPrefixes(tags: readonly unknown[], scheme: Canonical, suffix: boolean, fn: string): void {
  parseStrictTags(tags, scheme, suffix, (i) => `${fn}: tag ${i}`);
}

/**
 * Converts one sentence's tags from one scheme to another, through its
 * entities. The input is read leniently (conlleval's chunking), so an
 * ill-formed piece such as an I- after O becomes an entity and the output is
 * always well formed; a prefix that `from` does not use is an error.
 */
export function convertTags(tags: readonly string[], from: TagScheme, to: TagScheme, options: { suffix?: boolean } = {}): string[] {
  if (!Array.isArray(tags)) throw new ArgumentError('convertTags', 'tags must be an array of tag strings');
  const f = canonicalScheme(from, 'convertTags');
  canonicalScheme(to, 'convertTags');
  const suffix = options.suffix ?? false;
  checkPrefixes(tags, f, suffix, 'convertTags');
  return entitiesToTags(conllChunks(tags, { suffix, bilou: f === 'BILOU' }), tags.length, to, { suffix });
}

const SCHEME_RULE: Record<Canonical, string> = {
  IOB1: 'entities are I- tags, and B- only starts an entity that directly follows another of the same type',
  IOB2: 'every entity starts with B- and continues with I- of the same type',
  IOE1: 'entities are I- tags, and E- only ends an entity that is directly followed by another of the same type',
  IOE2: 'every entity ends with E- and its other tags are I- of the same type',
  IOBES: 'a one-word entity is S-, a longer one is B-, I-..., E- of one type',
  BILOU: 'a one-word entity is U-, a longer one is B-, I-..., L- of one type',
};

/**
 * Checks that tags are well formed in a scheme: only its prefixes, and every
 * tag where the scheme puts it (the tags equal the scheme's own writing of
 * their entities). Throws a DataError naming the first bad position, the tag,
 * its neighbours and the tag the scheme expects there.
 */
export function validateTags(tags: readonly string[], scheme: TagScheme, options: { suffix?: boolean } = {}): void {
  if (!Array.isArray(tags)) throw new ArgumentError('validateTags', 'tags must be an array of tag strings');
  const s = canonicalScheme(scheme, 'validateTags');
  const suffix = options.suffix ?? false;
  checkPrefixes(tags, s, suffix, 'validateTags');
  const expected = entitiesToTags(conllChunks(tags, { suffix, bilou: s === 'BILOU' }), tags.length, s, { suffix });
  for (let i = 0; i < tags.length; i++) {
    const got = parseLenient(tags[i], suffix);
    const want = parseLenient(expected[i], suffix);
    if (got.prefix === want.prefix && (got.type === want.type || want.prefix === 'O')) continue;
    const prev = i > 0 ? `'${tags[i - 1]}'` : 'the start';
    const next = i + 1 < tags.length ? `'${tags[i + 1]}'` : 'the end';
    throw new DataError(
      `validateTags: tag ${i} '${tags[i]}' (after ${prev}, before ${next}) is not valid ${s}: ${SCHEME_RULE[s]}; the well-formed tag there is '${expected[i]}'`,
    );
  }
}
