"""An independent re-implementation of seqeval 1.2.2's entity metrics, the
reference for test/metrics/seqeval.test.ts (seqeval itself is not
installable here). Written from seqeval's documented behaviour and
conlleval.pl, in a different shape from lib/metrics/seqeval.ts and
lib/data/tag-schemes.ts: conlleval's startOfChunk/endOfChunk if-chains for
the default mode, and per-scheme rules written out as conditions (instead of
seqeval's pattern tables) with a precomputed start/inside/end scan for the
strict mode. Plain Python floats, no numpy.

stdin: {"cases": [{"yTrue": [[tag]], "yPred": [[tag]]}],
        "configs": [{"mode", "scheme", "suffix"}]}  (every case under every config)
stdout: one result per (case, config), in that order.

--selftest test/data/seqeval-scheme-cases.json checks the strict rules against
seqeval's own scheme tests first.
"""
import json
import sys

ALLOWED = {'IOB1': 'IOB', 'IOB2': 'IOB', 'IOE1': 'IOE', 'IOE2': 'IOE', 'IOBES': 'IOBES', 'BILOU': 'BILOU'}


class PrefixError(Exception):
    def __init__(self, which, sentence, position):
        super().__init__()
        self.where = [which, sentence, position]


# ---- default mode: conlleval ----

def conll_split(tag, suffix):
    """conlleval's (chunk tag, chunk type); a missing type is '_' as in seqeval."""
    if suffix:
        rest = tag[:-1]
        typ = rest.rsplit('-', 1)[0] if '-' in rest else rest
        return tag[-1], typ or '_'
    rest = tag[1:]
    typ = rest.split('-', 1)[1] if '-' in rest else rest
    return tag[0], typ or '_'


def end_of_chunk(prev_tag, tag, prev_type, typ):
    # conlleval.pl's endOfChunk, line by line
    chunk_end = False
    if prev_tag == 'B' and tag == 'B':
        chunk_end = True
    if prev_tag == 'B' and tag == 'O':
        chunk_end = True
    if prev_tag == 'B' and tag == 'S':
        chunk_end = True
    if prev_tag == 'I' and tag == 'B':
        chunk_end = True
    if prev_tag == 'I' and tag == 'S':
        chunk_end = True
    if prev_tag == 'I' and tag == 'O':
        chunk_end = True
    if prev_tag == 'E':
        chunk_end = True
    if prev_tag == 'S':
        chunk_end = True
    if prev_tag != 'O' and prev_tag != '.' and prev_type != typ:
        chunk_end = True
    return chunk_end


def start_of_chunk(prev_tag, tag, prev_type, typ):
    # conlleval.pl's startOfChunk, line by line
    chunk_start = False
    if prev_tag == 'E' and tag == 'E':
        chunk_start = True
    if prev_tag == 'E' and tag == 'I':
        chunk_start = True
    if prev_tag == 'O' and tag == 'E':
        chunk_start = True
    if prev_tag == 'O' and tag == 'I':
        chunk_start = True
    if prev_tag == 'S' and tag == 'E':
        chunk_start = True
    if prev_tag == 'S' and tag == 'I':
        chunk_start = True
    if tag == 'B':
        chunk_start = True
    if tag == 'S':
        chunk_start = True
    if tag != 'O' and tag != '.' and prev_type != typ:
        chunk_start = True
    return chunk_start


def conll_entities(tags, suffix, bilou):
    """[(type, start, end)] with end exclusive."""
    found = []
    prev_tag, prev_type, start = 'O', '', 0
    for i, t in enumerate(list(tags) + ['O']):
        tag, typ = conll_split(t, suffix)
        if bilou and tag == 'L':
            tag = 'E'
        elif bilou and tag == 'U':
            tag = 'S'
        if end_of_chunk(prev_tag, tag, prev_type, typ):
            found.append((prev_type, start, i))
        if start_of_chunk(prev_tag, tag, prev_type, typ):
            start = i
        prev_tag, prev_type = tag, typ
    return found


# ---- strict mode: each scheme's rules as conditions ----

def rules(scheme):
    """(starts, inside, ends)(p, c) for previous/current (prefix, type)."""
    same = lambda p, c: p[1] == c[1]
    if scheme == 'IOB2':
        inside = lambda p, c: c[0] == 'I' and p[0] in 'BI' and same(p, c)
        return (lambda p, c: c[0] == 'B'), inside, (lambda p, c: p[0] in 'BI' and not inside(p, c))
    if scheme in ('IOBES', 'BILOU'):
        single, last = ('S', 'E') if scheme == 'IOBES' else ('U', 'L')
        inside = lambda p, c: p[0] in 'BI' and c[0] in ('I', last) and same(p, c)
        return (lambda p, c: c[0] in ('B', single)), inside, (lambda p, c: p[0] in (single, last))
    if scheme == 'IOE2':
        inside = lambda p, c: p[0] == 'I' and c[0] in 'IE' and same(p, c)
        return (lambda p, c: c[0] in 'IE' and not (p[0] == 'I' and same(p, c))), inside, (lambda p, c: p[0] == 'E')
    if scheme == 'IOB1':
        # B- only separates touching entities of one type; an I- after B- starts one whatever the type
        inside = lambda p, c: c[0] == 'I' and p[0] in 'BI' and same(p, c)
        starts = lambda p, c: (c[0] == 'I' and (p[0] in 'OB' or (p[0] == 'I' and not same(p, c)))) or (c[0] == 'B' and p[0] in 'IB' and same(p, c))
        ends = lambda p, c: p[0] in 'IB' and not inside(p, c) and not (p[0] == 'B' and c[0] == 'B' and not same(p, c))
        return starts, inside, ends
    if scheme == 'IOE1':
        # seqeval's IOE1 never ends an entity at E- followed by O (its own "Todo"): kept as is
        inside = lambda p, c: p[0] == 'I' and c[0] in 'IE' and same(p, c)
        starts = lambda p, c: (c[0] == 'I' and (p[0] in 'OE' or (p[0] == 'I' and not same(p, c)))) or (c[0] == 'E' and p[0] == 'E' and same(p, c))
        ends = lambda p, c: (p[0] == 'I' and not inside(p, c)) or (p[0] == 'E' and c[0] in 'IE' and same(p, c))
        return starts, inside, ends
    raise ValueError(scheme)


def strict_split(tag, suffix):
    body = tag[:-1] if suffix else tag[1:]
    return (tag[-1] if suffix else tag[0]), (body.strip('-') or '_')


def strict_entities(tags, scheme, suffix, which, sentence):
    toks = []
    for j, t in enumerate(tags):
        tok = strict_split(t, suffix)
        if tok[0] not in ALLOWED[scheme]:
            raise PrefixError(which, sentence, j)
        toks.append(tok)
    starts, inside, ends = rules(scheme)
    outside = ('O', '_')
    ext = toks + [outside]
    prevs = [outside] + ext[:-1]
    is_start = [starts(p, c) for p, c in zip(prevs, ext)]
    is_inside = [inside(p, c) for p, c in zip(prevs, ext)]
    is_end = [ends(p, c) for p, c in zip(prevs, ext)]
    found = []
    i = 0
    while i < len(ext):
        if not is_start[i]:
            i += 1
            continue
        j = i + 1
        while is_inside[j]:
            j += 1
        if is_end[j]:
            found.append((ext[i][1], i, j))
        i = j
    return found


# ---- scores ----

def entity_sets(y, cfg, which):
    """type -> set of places; default mode numbers positions over the sentences joined with O."""
    sets = {}
    if cfg['mode'] == 'default':
        joined = []
        for s in y:
            joined += s + ['O']
        for typ, a, b in conll_entities(joined, cfg['suffix'], cfg['scheme'] == 'BILOU'):
            sets.setdefault(typ, set()).add((a, b))
    else:
        for k, s in enumerate(y):
            for typ, a, b in strict_entities(s, cfg['scheme'], cfg['suffix'], which, k):
                sets.setdefault(typ, set()).add((k, a, b))
    return sets


def ratio(n, d, zd):
    return n / d if d else zd


def prf(tp, npred, ntrue, zd):
    p, r = ratio(tp, npred, zd), ratio(tp, ntrue, zd)
    f = 2 * p * r / (p + r) if p + r else 0
    return p, r, f


def scores(counts, average, zd):
    """counts: [(type, tp, npred, ntrue)] sorted by type."""
    if average == 'micro':
        tp = npred = ntrue = 0
        for _, a, b, c in counts:
            tp, npred, ntrue = tp + a, npred + b, ntrue + c
        return list(prf(tp, npred, ntrue, zd)) + [ntrue]
    per = [prf(a, b, c, zd) for _, a, b, c in counts]
    support = [c for _, _, _, c in counts]
    if average is None:
        return [[x[0] for x in per], [x[1] for x in per], [x[2] for x in per], support]
    total = 0
    for c in support:
        total += c
    if average == 'macro':
        if not per:
            return [zd, zd, zd, 0]
        out = []
        for k in range(3):
            acc = 0.0
            for x in per:
                acc += x[k]
            out.append(acc / len(per))
        return out + [total]
    # weighted
    if total == 0:
        nothing_predicted = all(b == 0 for _, _, b, _ in counts)
        return [zd if nothing_predicted else 0, zd, zd if nothing_predicted else 0, 0]
    out = []
    for k in range(3):
        acc = 0.0
        for x, w in zip(per, support):
            acc += x[k] * w
        out.append(acc / total)
    return out + [total]


def report_text(counts, zd, digits):
    names = [c[0] for c in counts]
    width = max([len(n) for n in names] + [len('weighted avg'), digits])
    row = lambda name, p, r, f, s: '{:>{w}s} '.format(name, w=width) + ''.join(' {:>9.{d}f}'.format(v, d=digits) for v in (p, r, f)) + ' {:>9}'.format(s)
    lines = []
    p, r, f, s = scores(counts, None, zd)
    for k, name in enumerate(names):
        lines.append(row(name, p[k], r[k], f[k], s[k]))
    lines.append('')
    for average in ('micro', 'macro', 'weighted'):
        lines.append(row(average + ' avg', *scores(counts, average, zd)))
    lines.append('')
    head = '{:>{w}s} '.format('', w=width) + ''.join(' {:>9}'.format(h) for h in ('precision', 'recall', 'f1-score', 'support'))
    return head + '\n\n' + '\n'.join(lines)


def evaluate(case, cfg):
    y_true, y_pred = case['yTrue'], case['yPred']
    out = {}
    try:
        if cfg['mode'] == 'default':
            bilou = cfg['scheme'] == 'BILOU'
            out['entitiesTrue'] = [conll_entities(s, cfg['suffix'], bilou) for s in y_true]
            out['entitiesPred'] = [conll_entities(s, cfg['suffix'], bilou) for s in y_pred]
        else:
            out['entitiesTrue'] = [strict_entities(s, cfg['scheme'], cfg['suffix'], 'yTrue', k) for k, s in enumerate(y_true)]
            out['entitiesPred'] = [strict_entities(s, cfg['scheme'], cfg['suffix'], 'yPred', k) for k, s in enumerate(y_pred)]
        truth = entity_sets(y_true, cfg, 'yTrue')
        pred = entity_sets(y_pred, cfg, 'yPred')
    except PrefixError as e:
        return {'error': e.where}
    counts = [(t, len(truth.get(t, set()) & pred.get(t, set())), len(pred.get(t, ())), len(truth.get(t, ())))
              for t in sorted(set(truth) | set(pred))]
    out['types'] = [c[0] for c in counts]
    out['scores'] = {}
    for zd in (0, 1):
        for average in ('micro', 'macro', 'weighted', None):
            out['scores']['%s/%d' % (average, zd)] = scores(counts, average, zd)
        out['report2/%d' % zd] = report_text(counts, zd, 2)
    out['report4/0'] = report_text(counts, 0, 4)
    flat_true = [t for s in y_true for t in s]
    flat_pred = [t for s in y_pred for t in s]
    if flat_true:
        out['accuracy'] = sum(1 for a, b in zip(flat_true, flat_pred) if a == b) / len(flat_true)
    pairs = list(zip(flat_true, flat_pred))
    out['performance'] = {
        'TP': sum(1 for a, b in pairs if a == b and (a != 'O' or b != 'O')),
        'FP': sum(1 for a, b in pairs if a != b and b != 'O'),
        'FN': sum(1 for a, b in pairs if a != 'O' and b == 'O'),
        'TN': sum(1 for a, b in pairs if a == 'O' and b == 'O'),
    }
    return out


def selftest(path):
    """Checks the strict rules above against seqeval's own test tables (test/data/seqeval-scheme-cases.json)."""
    cases = json.load(open(path))
    checked = 0
    for scheme, rows in cases['startInsideEnd'].items():
        starts, inside, ends = rules(scheme)
        for prev, tok, want in rows:
            p, c = strict_split(prev, False), strict_split(tok, False)
            got = [starts(p, c), inside(p, c), ends(p, c)]
            assert got == want, (scheme, prev, tok, got, want)
            checked += 1
    for scheme, rows in cases['entities'].items():
        for tokens, want in rows:
            got = [list(e) for e in strict_entities(tokens, scheme, False, 'yTrue', 0)]
            assert got == want, (scheme, tokens, got, want)
            checked += 1
    print(json.dumps({'checked': checked}))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == '--selftest':
        return selftest(sys.argv[2])
    job = json.load(sys.stdin)
    results = [evaluate(case, cfg) for case in job['cases'] for cfg in job['configs']]
    json.dump(results, sys.stdout)


if __name__ == '__main__':
    main()
