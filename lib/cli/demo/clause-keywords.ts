// The keyword baseline of `finetorch demo --task clauses`: what a person
// would write in ten minutes with grep, to show what the learned taggers add.
// Written by the lead from the clause types' names and meanings, without
// reading the annotator's rules (lib/data/licence-clauses.ts): it shares
// only the annotator's segmentation into clauses (clauseUnits), so both are
// scored on the same units and the comparison is about labelling, not
// about where sentences end.
import { clauseUnits, type ClauseSpan } from '../../data/licence-clauses.js';

/** Tried in order; the first list with a hit labels the clause. */
const KEYWORDS: ReadonlyArray<{ label: string; words: RegExp }> = [
  { label: 'common-licenses', words: /common-licenses|\/usr\/share\/common/i },
  { label: 'copy-received', words: /should have received a copy/i },
  { label: 'public-domain', words: /public domain/i },
  { label: 'exception', words: /\bexception\b|additional permission/i },
  { label: 'misrepresentation', words: /misrepresent/i },
  { label: 'altered-marked', words: /altered|plainly marked/i },
  { label: 'advertising', words: /advertising/i },
  { label: 'endorsement', words: /endorse|promote products/i },
  { label: 'binary', words: /binary form/i },
  { label: 'liability', words: /\bliab(le|ility)\b|damages/i },
  { label: 'warranty', words: /warrant|\bas is\b|merchantability/i },
  { label: 'patent', words: /\bpatent/i },
  { label: 'trademark', words: /trademark|trade name/i },
  { label: 'notice', words: /copyright notice|permission notice/i },
  { label: 'grant', words: /permission is (hereby )?granted|redistribute|free software|licensed under/i },
];

/** Clause spans of one text by keywords (clauses without a keyword are left out). */
export function keywordClauses(text: string): ClauseSpan[] {
  const spans: ClauseSpan[] = [];
  for (const [start, end] of clauseUnits(text)) {
    const clause = text.slice(start, end);
    const hit = KEYWORDS.find((k) => k.words.test(clause));
    if (hit) spans.push({ start, end, label: hit.label });
  }
  return spans;
}
