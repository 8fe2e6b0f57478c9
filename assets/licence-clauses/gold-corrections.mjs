// A record of how gold-sample.jsonl was made: the hand corrections applied to the annotator's output (rules as of commit f539672 plus the dev-set fixes), per
// sample document (line number - 1 of gold-sample.jsonl), in clause-unit indices of that version's clauseUnits. Documents without an entry were read and agreed with.
// Hand corrections of the annotator's output, per sample document (index into picked.json), in unit indices (clauseUnits).
// ['set', a, b, label]: the gold has one span of `label` over units a..b (spans overlapping it removed first)
// ['del', a, b]: no gold span over units a..b
// ['cut', k, 'words', before, after]: unit k split where 'words' starts; the part before gets `before`, the part from 'words' on gets `after` (null: no span)
export const DEV = 15; // documents 0..14 were read while the rules were written
export const edits = {
  10: [['set', 7, 7, 'advertising']],
  14: [['set', 15, 15, 'liability']],
  15: [['del', 3, 3]],
  16: [['set', 1, 1, 'grant'], ['set', 2, 2, 'altered-marked'], ['del', 3, 3], ['set', 6, 6, 'liability'], ['set', 7, 8, 'liability']],
  17: [['del', 1, 1], ['set', 3, 3, 'exception']],
  18: [['set', 0, 1, 'grant']],
  19: [['set', 7, 7, 'exception']],
  23: [['set', 2, 2, 'public-domain']],
  25: [['del', 1, 1]],
  32: [['set', 0, 0, 'grant']],
  35: [['set', 0, 0, 'grant']],
  38: [['set', 0, 0, 'grant']],
  43: [['set', 0, 0, 'grant']],
  48: [['set', 3, 4, 'notice'], ['set', 5, 5, 'altered-marked'], ['del', 6, 6]],
  54: [['del', 0, 0], ['set', 2, 2, 'notice']],
  59: [['cut', 0, 'provided that', 'grant', 'notice'], ['cut', 2, 'IN NO EVENT', 'warranty', 'liability']],
  61: [['set', 0, 0, 'grant']],
  62: [['set', 1, 1, 'warranty'], ['cut', 2, 'You can use', null, 'grant'], ['set', 4, 4, 'misrepresentation'], ['set', 5, 5, 'binary'], ['set', 22, 22, 'liability']],
  63: [['set', 2, 2, 'warranty'], ['cut', 3, 'You can use', null, 'grant'], ['set', 5, 5, 'misrepresentation'], ['set', 6, 6, 'binary'], ['set', 23, 23, 'liability'], ['set', 29, 29, 'grant'], ['set', 31, 32, 'grant'], ['set', 34, 34, 'patent']],
  66: [['set', 2, 2, 'grant'], ['set', 3, 4, 'notice']],
  70: [['set', 4, 4, 'notice']],
  72: [['set', 1, 1, 'grant']],
  73: [['set', 2, 2, 'grant']],
  79: [['set', 3, 3, 'warranty'], ['cut', 5, 'IN NO EVENT', 'warranty', 'liability']],
};
