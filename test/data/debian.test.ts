// data.debian on this machine's real files: the package descriptions fetched
// by apt (skipped, with the reason, when apt cannot reach a mirror), the DEP-5
// licence paragraphs under /usr/share/doc, the few-label splits and the
// adaptation corpus. Counts are checked against an independent parse in
// Debian's Python over the same files.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { data, DataError, ArgumentError } from 'finetorch';

const { debian } = data;

function python<T>(code: string, args: string[] = []): T {
  const r = spawnSync('/usr/bin/python3', ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python reference failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

// An independent parse of Translation-en files: regular expressions over
// paragraphs, the same document definition (long description, ' .' breaks).
const PY_DESCRIPTIONS = String.raw`
import sys, re, json, hashlib, subprocess
paragraphs = 0
texts = {}
for f in sys.argv[1:]:
    out = subprocess.run(['/usr/lib/apt/apt-helper', 'cat-file', f], capture_output=True, text=True, check=True).stdout
    for block in re.split(r'\n\s*\n', out):
        m = re.search(r'^Package:\s*(\S+)', block, re.M)
        if not m: continue
        paragraphs += 1
        d = re.search(r'^Description-en:[^\n]*\n((?:[ \t][^\n]*(?:\n|$))*)', block, re.M)
        parts, cur = [], []
        for line in (d.group(1) if d else '').splitlines():
            s = line.strip()
            if s == '.':
                parts.append(' '.join(cur)); cur = []
            else:
                cur.append(s)
        parts.append(' '.join(cur))
        text = '\n'.join(p for p in parts if p)
        if text: texts[text] = min(texts.get(text, m.group(1)), m.group(1))
held = [t for t in texts if int.from_bytes(hashlib.sha256(t.split('\n')[0].encode()).digest()[:4], 'big') / 2**32 < 0.02]
print(json.dumps({'paragraphs': paragraphs, 'documents': len(texts), 'words': sum(len(t.split()) for t in texts),
                  'heldOut': len(held), 'packages': sorted(texts.values())[:50]}))
`;

describe('data.debian.debianDescriptions (apt fetch of the package index)', () => {
  let dir: string;
  let corpus: ReturnType<typeof debian.debianDescriptions> | undefined;
  let skipReason = '';
  let firstMs = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'finetorch-debian-'));
    chmodSync(dir, 0o755); // apt's download user must reach the lists folder
    const t = Date.now();
    try {
      corpus = debian.debianDescriptions({ cacheDir: dir });
    } catch (err) {
      if (err instanceof DataError && /could not be downloaded/.test(err.message))
        skipReason = `apt cannot fetch the package index here: ${err.message.split('\n')[0]}`;
      else throw err;
    }
    firstMs = Date.now() - t;
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses as many paragraphs, documents and words as an independent parse of the same files', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const c = corpus!;
    const files = c.provenance.files.map((f) => join(dir, 'apt-lists', f.name));
    expect(files.some((f) => /_main_i18n_Translation-en/.test(f))).toBe(true);
    const ref = python<{ paragraphs: number; documents: number; words: number; heldOut: number; packages: string[] }>(PY_DESCRIPTIONS, files);
    expect(c.provenance.paragraphs).toBe(ref.paragraphs);
    expect(c.provenance.documents).toBe(ref.documents);
    expect(c.provenance.words).toBe(ref.words);
    expect(c.heldOut.length).toBe(ref.heldOut);
    expect(c.train.length + c.heldOut.length).toBe(ref.documents);
    expect(c.provenance.train.words + c.provenance.heldOut.words).toBe(ref.words);
    // Debian main alone has 60k+ unique long descriptions and 3M+ words
    expect(ref.documents).toBeGreaterThan(50_000);
    expect(ref.words).toBeGreaterThan(3_000_000);
    const all = [...c.train, ...c.heldOut].map((d) => d.package).sort();
    expect(all.slice(0, 50)).toEqual(ref.packages);
    console.log(`descriptions: fetch+parse ${firstMs} ms, ${c.provenance.documents} documents, ${c.provenance.words} words, held out ${c.heldOut.length}`);
  });

  it('records each file with its size and sha256 (checked with sha256sum)', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    for (const f of corpus!.provenance.files) {
      const path = join(dir, 'apt-lists', f.name);
      const sum = spawnSync('sha256sum', [path], { encoding: 'utf8' }).stdout.split(' ')[0];
      expect(f.sha256).toBe(sum);
      expect(f.bytes).toBe(readFileSync(path).length);
    }
  });

  it('documents are unique, sorted by package, and the held-out part is ~2%, disjoint and keeps near-copies together', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const { train, heldOut } = corpus!;
    const texts = new Set([...train, ...heldOut].map((d) => d.text));
    expect(texts.size).toBe(train.length + heldOut.length);
    for (const part of [train, heldOut]) for (let i = 1; i < part.length; i++) expect(part[i - 1].package <= part[i].package).toBe(true);
    const share = heldOut.length / (train.length + heldOut.length);
    expect(share).toBeGreaterThan(0.015);
    expect(share).toBeLessThan(0.025);
    const trainFirst = new Set(train.map((d) => d.text.split('\n')[0]));
    expect(heldOut.filter((d) => trainFirst.has(d.text.split('\n')[0]))).toEqual([]);
    expect(train.find((d) => d.package === '0ad')?.short).toMatch(/strategy game/);
  });

  it('a second call reads the cache: same documents, much faster', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const t = Date.now();
    const again = debian.debianDescriptions({ cacheDir: dir });
    const ms = Date.now() - t;
    expect(again.train.length).toBe(corpus!.train.length);
    expect(again.heldOut.map((d) => d.package)).toEqual(corpus!.heldOut.map((d) => d.package));
    expect(again.provenance.files).toEqual(corpus!.provenance.files);
    expect(again.provenance.heldOut.words).toBe(corpus!.provenance.heldOut.words);
    expect(ms).toBeLessThan(Math.max(firstMs / 2, 3000));
    console.log(`descriptions: cached call ${ms} ms`);
  });

  it('an unreachable mirror is a DataError that says the index could not be downloaded', () => {
    const empty = mkdtempSync(join(tmpdir(), 'finetorch-debian-'));
    chmodSync(empty, 0o755);
    try {
      expect(() =>
        debian.debianDescriptions({
          cacheDir: empty,
          aptArgs: ['-o', 'Acquire::http::Proxy=http://127.0.0.1:9', '-o', 'Acquire::https::Proxy=http://127.0.0.1:9'],
        }),
      ).toThrow(/apt-get update .*could not be downloaded \(no network/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  }, 120_000);

  it('bad options are ArgumentErrors naming the option', () => {
    expect(() => debian.debianDescriptions({} as never)).toThrow(ArgumentError);
    expect(() => debian.debianDescriptions({ cacheDir: '/tmp/x', heldOutFraction: 1.5 })).toThrow(/heldOutFraction/);
    expect(() => debian.debianDescriptions({ cacheDir: '/tmp/x', aptArgs: [1 as never] })).toThrow(/aptArgs/);
  });
});

describe('data.debian.parseTranslation', () => {
  it('reads short and long descriptions, paragraph breaks, and names the line of a malformed one', () => {
    const text = 'Package: a\nDescription-md5: 00\nDescription-en: Short A\n first line\n second\n .\n  verbatim\n\nPackage: b\nDescription-en: Short B\n';
    expect(debian.parseTranslation(text)).toEqual([
      { package: 'a', short: 'Short A', text: 'first line second\nverbatim' },
      { package: 'b', short: 'Short B', text: '' },
    ]);
    expect(() => debian.parseTranslation('Package: a\nDescription-en: x\nbroken line\n', 'T')).toThrow(/T: line 3 is neither a field/);
    expect(() => debian.parseTranslation('Package: a\nDescription-md5: 00\n\n', 'T')).toThrow(/package a \(line 1\) has no Description-en/);
  });
});

// An independent parse of the DEP-5 copyright files: unique texts (after
// following links), first line naming copyright-format/1.0, License fields with
// continuation text, grouped by the same near-duplicate key.
const PY_LICENCES = String.raw`
import glob, os, re, json
seen = set(); dep5 = 0; copies = 0; keys = set()
for path in sorted(glob.glob('/usr/share/doc/*/copyright')):
    try: text = open(os.path.realpath(path), encoding='utf-8', errors='strict').read()
    except OSError: continue
    if text in seen: continue
    seen.add(text)
    if not re.match(r'Format:\s*\S*copyright-format/1\.0', text.lstrip('\ufeff').split('\n', 1)[0]): continue
    dep5 += 1
    for para in re.split(r'\n[ \t]*(?:\r)?\n', text):
        lines = [l for l in para.split('\n') if not l.startswith('#')]
        for i, l in enumerate(lines):
            m = re.match(r'(?i)license:\s*(.*)$', l)
            if not m: continue
            body = []
            for b in lines[i + 1:]:
                if b[:1] in (' ', '\t'): body.append(b.strip())
                else: break
            text_ = ' '.join(b for b in body if b != '.')
            key = re.sub(r'[\W_]+', ' ', re.sub(r'\b(19|20)\d\d\b', ' ', text_.lower())).strip()
            if m.group(1).strip() and key:
                copies += 1; keys.add(key)
            break
print(json.dumps({'unique_files': len(seen), 'dep5': dep5, 'copies': copies, 'groups': len(keys)}))
`;

describe('data.debian.licenceParagraphs', () => {
  let paragraphs: ReturnType<typeof debian.licenceParagraphs>;
  let ms = 0;
  beforeAll(() => {
    const t = Date.now();
    paragraphs = debian.licenceParagraphs();
    ms = Date.now() - t;
  });

  it('finds as many License texts and near-duplicate groups as an independent parse', () => {
    const ref = python<{ unique_files: number; dep5: number; copies: number; groups: number }>(PY_LICENCES);
    expect(ref.dep5).toBeGreaterThan(100); // a Debian system with hundreds of packages
    expect(paragraphs.reduce((n, p) => n + p.copies, 0)).toBe(ref.copies);
    expect(paragraphs.length).toBe(ref.groups);
    expect(new Set(paragraphs.map((p) => p.key)).size).toBe(paragraphs.length);
    const counts: Record<string, number> = {};
    for (const p of paragraphs) counts[p.label] = (counts[p.label] ?? 0) + 1;
    const top = Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10);
    console.log(
      `licences: ${ms} ms, ${ref.dep5} DEP-5 files of ${ref.unique_files} unique, ${ref.copies} texts, ${paragraphs.length} groups; ${JSON.stringify(top)}`,
    );
  });

  it('labels are normalised names, the most common among each text’s copies', () => {
    for (const p of paragraphs) {
      expect(debian.normaliseLicenceName(p.label)).toBe(p.label);
      expect(p.label).toBe(p.label.toLowerCase());
      expect(p.label).not.toMatch(/\s\s|^\s|\s$/);
      const top = Math.max(...Object.values(p.names));
      expect(p.names[p.label]).toBe(top);
      expect(p.packages.length).toBeGreaterThan(0);
      expect(p.text.trim()).not.toBe('');
    }
    // the merged spellings
    expect(debian.normaliseLicenceName('BSD-3-clause')).toBe(debian.normaliseLicenceName('bsd-3-CLAUSE'));
    expect(debian.normaliseLicenceName('  GPL-2.0+   with Texinfo exception')).toBe('gpl-2+ with texinfo exception');
    expect(debian.normaliseLicenceName('GPL-2.0-or-later')).toBe('gpl-2+');
    expect(debian.normaliseLicenceName('LGPL-2.0-or-later')).toBe('lgpl-2+');
    expect(debian.normaliseLicenceName('LGPL-2.1-only')).toBe('lgpl-2.1');
    expect(debian.normaliseLicenceName('LGPL-2.1')).toBe('lgpl-2.1');
    expect(debian.normaliseLicenceName('BSD-3')).toBe('bsd-3-clause');
    expect(debian.normaliseLicenceName('public domain')).toBe('public-domain');
    // and the names that are not merged
    expect(debian.normaliseLicenceName('MIT')).not.toBe(debian.normaliseLicenceName('Expat'));
    expect(debian.normaliseLicenceName('GPL')).not.toBe(debian.normaliseLicenceName('GPL-2'));
  });

  it('a text found on this machine is labelled as its copyright file says', () => {
    // /usr/share/common-licenses/GPL-2's pointer paragraphs are everywhere; pick the first
    // DEP-5 file with a stand-alone License paragraph and check it round-trips
    const doc = readdirSync('/usr/share/doc').sort();
    for (const d of doc) {
      let text: string;
      try {
        text = readFileSync(join('/usr/share/doc', d, 'copyright'), 'utf8');
      } catch {
        continue;
      }
      if (!debian.isDep5(text)) continue;
      const m = /\n\nLicense: *([^\n]+)\n((?: [^\n]*\n)+)/.exec(text);
      if (!m) continue;
      const key = debian.licenceTextKey(m[2].replace(/^ \.$/gm, ''));
      const found = paragraphs.find((p) => p.key === key);
      expect(found, `${d}: License: ${m[1]}`).toBeDefined();
      expect(Object.keys(found!.names)).toContain(debian.normaliseLicenceName(m[1]));
      return;
    }
    throw new Error('no DEP-5 copyright file with a License paragraph on this machine');
  });
});

describe('data.debian.licenceSplit', () => {
  const paragraphs = debian.licenceParagraphs();

  const keys = (xs: { key: string }[]) => xs.map((x) => x.key);

  it('is stratified, disjoint and complete over the kept classes; rare ones dropped', () => {
    const s = debian.licenceSplit(paragraphs, { perClass: 8, seed: 1 });
    const all = [...keys(s.train), ...keys(s.validation), ...keys(s.test), ...keys(s.unusedTrain), ...keys(s.overlapDropped)];
    expect(new Set(all).size).toBe(all.length);
    const kept = paragraphs.filter((p) => !(p.label in s.rareLabels));
    expect(all.length).toBe(kept.length);
    for (const [label, n] of Object.entries(s.rareLabels)) {
      expect(n).toBeLessThan(20);
      expect(s.classes).not.toContain(label);
    }
    for (const c of s.classes) {
      const n = kept.filter((p) => p.label === c).length;
      expect(n).toBeGreaterThanOrEqual(20);
      expect(Math.abs(s.counts[c].test - 0.3 * n)).toBeLessThanOrEqual(1);
      expect(Math.abs(s.counts[c].validation - 0.1 * n)).toBeLessThanOrEqual(1);
      expect(s.counts[c].train).toBe(Math.min(8, s.counts[c].all - s.counts[c].test - s.counts[c].validation));
    }
    for (const it of [...s.train, ...s.test]) expect(s.classes[it.y]).toBe(it.className);
    console.log(`licence split: ${s.classes.length} classes ${JSON.stringify(s.counts)}`);
  });

  it('no held-out text (8+ words) is part of a training-pool text, nor the reverse; with overlap: keep there are such pairs', () => {
    const crossing = (s: ReturnType<typeof debian.licenceSplit>) => {
      const pool = [...s.train, ...s.unusedTrain].map((p) => ` ${p.key} `);
      let n = 0;
      for (const h of [...s.test, ...s.validation]) {
        const k = ` ${h.key} `;
        for (const p of pool) if ((h.key.split(' ').length >= 8 && p.includes(k)) || (p.trim().split(' ').length >= 8 && k.includes(p))) n++;
      }
      return n;
    };
    const pool = debian.licenceSplit(paragraphs, { perClass: 8 });
    expect(crossing(pool)).toBe(0);
    expect(pool.overlapDropped.length).toBeGreaterThan(0);
    const held = debian.licenceSplit(paragraphs, { perClass: 8, overlap: 'held-out' });
    expect(crossing(held)).toBe(0);
    const keep = debian.licenceSplit(paragraphs, { perClass: 8, overlap: 'keep' });
    expect(crossing(keep)).toBeGreaterThan(0);
    expect(keys(pool.test)).toEqual(keys(keep.test)); // 'pool' leaves the held-out sets whole
    console.log(
      `licence split overlap: 'pool' drops ${pool.overlapDropped.length} pool paragraphs, 'held-out' drops ${held.overlapDropped.length} held-out ones`,
    );
  });

  it('same test set for every seed and budget; a smaller budget is part of a larger one', () => {
    const a8 = debian.licenceSplit(paragraphs, { perClass: 8, seed: 3 });
    const a32 = debian.licenceSplit(paragraphs, { perClass: 32, seed: 3 });
    const b8 = debian.licenceSplit(paragraphs, { perClass: 8, seed: 4 });
    expect(keys(a32.test)).toEqual(keys(a8.test));
    expect(keys(b8.test)).toEqual(keys(a8.test));
    expect(keys(debian.licenceSplit(paragraphs, { perClass: 8, seed: 3 }).train)).toEqual(keys(a8.train));
    expect(keys(b8.train)).not.toEqual(keys(a8.train));
    const big = new Set(keys(a32.train));
    expect(keys(a8.train).every((k) => big.has(k))).toBe(true);
    const other = debian.licenceSplit(paragraphs, { perClass: 8, splitSeed: 1 });
    expect(keys(other.test)).not.toEqual(keys(a8.test));
  });

  it("a total budget is spread in proportion; rare: 'other' folds the long tail", () => {
    const t = debian.licenceSplit(paragraphs, { total: 40 });
    expect(t.train.length).toBe(40);
    for (const c of t.classes) expect(t.counts[c].train).toBeGreaterThanOrEqual(1);
    const o = debian.licenceSplit(paragraphs, { perClass: 8, rare: 'other', minCount: 30, overlap: 'keep' });
    expect(o.classes).toContain('other');
    const folded = Object.values(o.rareLabels).reduce((a, b) => a + b, 0);
    expect(o.counts.other.all).toBe(folded);
  });

  it('bad options are ArgumentErrors naming the option', () => {
    expect(() => debian.licenceSplit(paragraphs, {})).toThrow(/perClass or total/);
    expect(() => debian.licenceSplit(paragraphs, { perClass: 0 })).toThrow(/budget/);
    expect(() => debian.licenceSplit(paragraphs, { perClass: 8, testFraction: 0.95 })).toThrow(/testFraction/);
    expect(() => debian.licenceSplit(paragraphs, { perClass: 8, minCount: 100_000 })).toThrow(/minCount/);
    expect(() => debian.licenceSplit(paragraphs, { perClass: 8, rare: 'keep' as never })).toThrow(/rare/);
    expect(() => debian.licenceSplit(paragraphs, { perClass: 8, overlap: 'drop' as never })).toThrow(/overlap/);
    expect(() => debian.licenceSplit([{ text: 'x' }] as never, { perClass: 8 })).toThrow(ArgumentError);
  });
});

describe('data.debian.licenceCorpus', () => {
  const paragraphs = debian.licenceParagraphs();
  const split = debian.licenceSplit(paragraphs, { perClass: 8 });
  const heldOut = [...split.test, ...split.validation];

  it('no held-out paragraph appears in the corpus when excluded (all of them do when not)', () => {
    const key = (docs: { text: string }[]) => `\n${docs.map((d) => debian.licenceTextKey(d.text)).join('\n')}\n`;
    const inside = (corpus: string, k: string) =>
      corpus.includes(` ${k} `) || corpus.includes(`\n${k} `) || corpus.includes(` ${k}\n`) || corpus.includes(`\n${k}\n`);
    const t0 = Date.now();
    const full = debian.licenceCorpus({ sourceHeaders: false });
    const t1 = Date.now();
    const kept = debian.licenceCorpus({ sourceHeaders: false, exclude: heldOut });
    const t2 = Date.now();
    const fullText = key(full.documents);
    const keptText = key(kept.documents);
    expect(heldOut.filter((p) => inside(fullText, p.key)).length).toBe(heldOut.length);
    expect(heldOut.filter((p) => inside(keptText, p.key)).map((p) => p.key.slice(0, 60))).toEqual([]);
    // the training paragraphs stay (none of them is a near-copy of a held-out one)
    const trainStill = split.train.filter((p) => inside(keptText, p.key)).length;
    expect(trainStill).toBeGreaterThan(split.train.length / 2);
    expect(kept.provenance.excluded.texts).toBe(heldOut.length);
    expect(kept.provenance.words).toBe(full.provenance.words - kept.provenance.excluded.wordsDropped);
    console.log(
      `corpus without headers: ${t1 - t0} ms, ${full.provenance.words} words; excluding ${heldOut.length} held-out texts: ${t2 - t1} ms, ${kept.provenance.words} words (${kept.provenance.excluded.documentsDropped} chunks dropped); train paragraphs kept ${trainStill}/${split.train.length}`,
    );
  });

  it('common-licenses are in it, about as many words as wc -w counts in the unique files', () => {
    const c = debian.licenceCorpus({ sourceHeaders: false });
    const real = [
      ...new Set(
        readdirSync('/usr/share/common-licenses').map((f) =>
          spawnSync('readlink', ['-f', join('/usr/share/common-licenses', f)], { encoding: 'utf8' }).stdout.trim(),
        ),
      ),
    ];
    const wc = Number(spawnSync('sh', ['-c', `cat ${real.map((r) => `'${r}'`).join(' ')} | wc -w`], { encoding: 'utf8' }).stdout.trim());
    const ours = c.provenance.sources['common-licenses'].words;
    expect(c.provenance.sources['common-licenses'].files).toBe(real.length);
    // repeated blocks (the GPL-2 and LGPL-2 share their ends, ...) are kept once, so fewer, not more
    expect(ours).toBeLessThanOrEqual(wc);
    expect(ours).toBeGreaterThan(0.5 * wc);
    expect(c.provenance.sources.copyright.words).toBeGreaterThan(100_000);
  });

  it('reads the licence comments that open source files', () => {
    const roots = ['/usr/include/openssl', '/usr/lib/python3/dist-packages/pip/_internal'].filter((r) => spawnSync('test', ['-d', r]).status === 0);
    if (!roots.length) return;
    const noDocs = mkdtempSync(join(tmpdir(), 'finetorch-nodoc-'));
    const c = debian.licenceCorpus({ commonLicenses: false, headerRoots: roots, docDir: noDocs });
    rmSync(noDocs, { recursive: true });
    const headers = c.documents.filter((d) => d.source.startsWith('header:'));
    expect(headers.length).toBeGreaterThan(0);
    expect(headers.some((d) => /licen[cs]e/i.test(d.text))).toBe(true);
    for (const d of headers) expect(d.text).not.toMatch(/^\s*(\/\*|\*\/|\/\/|#)/m);
  });

  it('leadingComment strips comment markers of C and Python files', () => {
    expect(debian.leadingComment('\n/*!\n * Copyright X\n * Licensed under MIT\n */\nint x;', false)).toBe('\nCopyright X\nLicensed under MIT\n');
    expect(debian.leadingComment('#!/usr/bin/python3\n# Copyright Y\n# GPL\nimport os', true)).toBe('Copyright Y\nGPL');
    expect(debian.leadingComment('// SPDX: MIT\n// more\nint y;', false)).toBe('SPDX: MIT\nmore');
  });

  it('bad options are clear errors', () => {
    expect(() => debian.licenceCorpus({ exclude: [3 as never] })).toThrow(/exclude\[0\]/);
    expect(() => debian.licenceCorpus({ sourceHeaders: false, commonLicensesDir: '/nonexistent-licences' })).toThrow(/cannot list \/nonexistent-licences/);
    expect(() => debian.licenceCorpus({ docDir: '/nonexistent-doc' })).toThrow(/licenceCorpus: cannot list \/nonexistent-doc/);
  });
});
