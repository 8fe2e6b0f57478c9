"""Extracts the expected values of seqeval 1.2.2's own scheme tests
(tests/test_scheme.py: start/inside/end of a token after another, and the
entities of short sequences, per scheme) into
test/data/seqeval-scheme-cases.json, for test/data/tag-schemes.test.ts and the
Python reference's self-check. Reads the test file with ast (imports nothing
from seqeval).

  /usr/bin/python3 test/data/make_seqeval_scheme_cases.py path/to/seqeval/tests/test_scheme.py
"""
import ast
import json
import os
import sys

src = open(sys.argv[1]).read()
tree = ast.parse(src)
out = {'source': 'seqeval 1.2.2 tests/test_scheme.py (github.com/chakki-works/seqeval, tag v1.2.2)', 'startInsideEnd': {}, 'entities': {}}
for node in tree.body:
    if not isinstance(node, ast.FunctionDef) or not node.decorator_list:
        continue
    name = node.name
    deco = node.decorator_list[0]
    if not (isinstance(deco, ast.Call) and getattr(deco.func, 'attr', '') == 'parametrize'):
        continue
    params = ast.literal_eval(deco.args[0])
    if name.endswith('_start_inside_end') and params == 'prev, token, expected':
        scheme = name.split('_')[1].upper()
        out['startInsideEnd'][scheme] = [list(row) for row in ast.literal_eval(deco.args[1])]
    elif (name.endswith('_tokens') or name.endswith('_tokens_without_tag')) and params == 'tokens, expected':
        scheme = name.split('_')[1].upper()
        rows = []
        for row in deco.args[1].elts:
            tokens = ast.literal_eval(row.elts[0])
            expected = ast.literal_eval(row.elts[1])  # [(tag, start, end)]
            rows.append([tokens, [list(e) for e in expected]])
        out['entities'].setdefault(scheme, []).extend(rows)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'seqeval-scheme-cases.json')
# one row per line, so that the file reads like the test it came from
lines = ['{', '  "source": %s,' % json.dumps(out['source'])]
for key in ('startInsideEnd', 'entities'):
    lines.append('  "%s": {' % key)
    schemes = list(out[key])
    for k, scheme in enumerate(schemes):
        rows = out[key][scheme]
        lines.append('    "%s": [' % scheme)
        lines += ['      %s%s' % (json.dumps(r, ensure_ascii=False), ',' if i < len(rows) - 1 else '') for i, r in enumerate(rows)]
        lines.append('    ]%s' % (',' if k < len(schemes) - 1 else ''))
    lines.append('  }%s' % (',' if key == 'startInsideEnd' else ''))
lines.append('}')
with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
json.load(open(path))
print('start/inside/end rows:', {k: len(v) for k, v in out['startInsideEnd'].items()}, 'entity cases:', {k: len(v) for k, v in out['entities'].items()})
