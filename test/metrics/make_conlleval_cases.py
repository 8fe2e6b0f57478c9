"""Runs conlleval.pl itself (the CoNLL shared tasks' Perl evaluation script,
which seqeval's default mode reproduces) on random tag sequences and on the
tag columns of the CoNLL-2000 sample in seqeval's tests/data/ground_truth.txt,
and records its counts in test/metrics/conlleval-cases.json for
test/metrics/seqeval.test.ts. conlleval.pl is not part of finetorch: take it
from seqeval's repository (tests/conlleval.pl, tag v1.2.2).

  /usr/bin/python3 test/metrics/make_conlleval_cases.py path/to/conlleval.pl path/to/ground_truth.txt

Tags are typed B-/I- or O, with ill-formed transitions (I- after O, type
changes): conlleval.pl (version 2004-01-26) has rules for B-, I- and E- but
none for S-, and seqeval's default mode adds its own E-/S- rules, so the two
agree on IOB1/IOB2 tags only; a tag without a type is read differently too.
"""
import json
import os
import random
import re
import subprocess
import sys

conlleval, ground_truth = sys.argv[1], sys.argv[2]


def run_conlleval(y_true, y_pred):
    lines = []
    for st, sp in zip(y_true, y_pred):
        lines += ['w %s %s' % (a, b) for a, b in zip(st, sp)]
        lines.append('')
    out = subprocess.run(['perl', conlleval], input='\n'.join(lines) + '\n', capture_output=True, text=True, check=True).stdout
    m = re.search(r'processed (\d+) tokens with (\d+) phrases; found: (\d+) phrases; correct: (\d+)\.', out)
    acc = re.search(r'accuracy:\s+([\d.]+)%', out)
    per_type = {}
    for t, p, r, f, n in re.findall(r'^\s*(\S+): precision:\s+([\d.]+)%; recall:\s+([\d.]+)%; FB1:\s+([\d.]+)\s+(\d+)$', out, re.M):
        per_type[t] = {'precision': p, 'recall': r, 'fb1': f, 'found': int(n)}
    return {'tokens': int(m.group(1)), 'phrases': int(m.group(2)), 'found': int(m.group(3)), 'correct': int(m.group(4)),
            'accuracy': acc.group(1) if acc else None, 'perType': per_type}


rng = random.Random(2000)


def tag():
    if rng.random() < 0.35:
        return 'O'
    return '%s-%s' % (rng.choice('BI'), rng.choice(['NP', 'VP', 'PER', 'LOC-X']))


cases = []
for _ in range(150):
    lengths = [rng.randrange(13) for _ in range(rng.randrange(1, 5))]
    y_true = [[tag() for _ in range(n)] for n in lengths]
    if rng.random() < 0.5:
        y_pred = [[tag() if rng.random() < 0.25 else t for t in s] for s in y_true]
    else:
        y_pred = [[tag() for _ in range(n)] for n in lengths]
    if sum(lengths) == 0:
        continue
    cases.append({'yTrue': [' '.join(s) for s in y_true], 'yPred': [' '.join(s) for s in y_pred], 'conlleval': run_conlleval(y_true, y_pred)})

# the CoNLL-2000 sample: tag columns only, sentences split at blank lines
y_true, y_pred, st, sp = [], [], [], []
for line in open(ground_truth).read().split('\n'):
    if not line.strip():
        if st:
            y_true.append(st)
            y_pred.append(sp)
        st, sp = [], []
        continue
    fields = line.split()
    st.append(fields[-2])
    sp.append(fields[-1])
if st:
    y_true.append(st)
    y_pred.append(sp)
conll2000 = {'yTrue': [' '.join(s) for s in y_true], 'yPred': [' '.join(s) for s in y_pred], 'conlleval': run_conlleval(y_true, y_pred)}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conlleval-cases.json')
with open(path, 'w') as f:
    f.write('{\n  "source": "counts printed by conlleval.pl (seqeval v1.2.2 tests/conlleval.pl, version 2004-01-26); sentences are space-joined tags",\n')
    f.write('  "conll2000": %s,\n' % json.dumps(conll2000))
    f.write('  "random": [\n%s\n  ]\n}\n' % ',\n'.join('    ' + json.dumps(c) for c in cases))
print(len(cases), 'random cases; CoNLL-2000 sample:', {k: v for k, v in conll2000['conlleval'].items() if k != 'perType'})
