// A small XML reader, enough for Pascal VOC annotations: elements,
// attributes, text, entities, comments, CDATA, the XML declaration and a
// DOCTYPE (skipped). No namespaces or DTD entities. Errors name the file and
// the line.
import { DataError } from '../../errors.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (not its children's), entities decoded, untrimmed. */
  text: string;
  /** 1-based line of the opening tag. */
  line: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*/;

/** Parses `text` (the contents of `file`, named in errors) into its root element. */
export function parseXml(text: string, file: string): XmlElement {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const lineAt = (pos: number) => {
    let n = 1;
    for (let k = 0; k < pos; k++) if (text.charCodeAt(k) === 10) n++;
    return n;
  };
  const fail = (pos: number, what: string): never => {
    throw new DataError(`${file}: line ${lineAt(pos)}: ${what}`, { path: file, row: lineAt(pos) });
  };
  const decode = (s: string, pos: number) =>
    s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);|&/g, (_, e: string | undefined) => {
      if (e === undefined) return fail(pos, "a bare '&' (write &amp;)");
      if (e[0] === '#') {
        const code = e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
        if (!(code <= 0x10ffff)) return fail(pos, `&${e}; is not a character`);
        return String.fromCodePoint(code);
      }
      if (!(e in ENTITIES)) return fail(pos, `unknown entity &${e};`);
      return ENTITIES[e];
    });
  const skipTo = (end: string, what: string) => {
    const k = text.indexOf(end, i);
    if (k < 0) fail(i, `unterminated ${what}`);
    const inner = text.slice(i, k);
    i = k + end.length;
    return inner;
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  while (i < text.length) {
    if (text[i] !== '<') {
      const k = text.indexOf('<', i);
      const end = k < 0 ? text.length : k;
      const chunk = text.slice(i, end);
      if (stack.length) stack[stack.length - 1].text += decode(chunk, i);
      else if (chunk.trim()) fail(i, `text outside the root element: ${JSON.stringify(chunk.trim().slice(0, 40))}`);
      i = end;
    } else if (text.startsWith('<?', i)) {
      i += 2;
      skipTo('?>', 'processing instruction (<? ... ?>)');
    } else if (text.startsWith('<!--', i)) {
      i += 4;
      skipTo('-->', 'comment (<!-- ... -->)');
    } else if (text.startsWith('<![CDATA[', i)) {
      const at = i;
      i += 9;
      const inner = skipTo(']]>', 'CDATA section');
      if (!stack.length) fail(at, 'CDATA outside the root element');
      stack[stack.length - 1].text += inner;
    } else if (text.startsWith('<!', i)) {
      // <!DOCTYPE ...> possibly with an internal subset [ ... ]
      const at = i;
      let depth = 0;
      for (i += 2; i < text.length; i++) {
        if (text[i] === '[') depth++;
        else if (text[i] === ']') depth--;
        else if (text[i] === '>' && depth <= 0) break;
      }
      if (i >= text.length) fail(at, 'unterminated <!DOCTYPE');
      i++;
    } else if (text[i + 1] === '/') {
      const at = i;
      i += 2;
      const name = skipTo('>', 'closing tag').trim();
      const open = stack.pop();
      if (!open) fail(at, `</${name}> closes nothing`);
      else if (open.name !== name) fail(at, `</${name}> closes <${open.name}> (opened on line ${open.line})`);
    } else {
      const at = i;
      i++;
      const m = NAME.exec(text.slice(i, i + 200));
      if (!m) fail(at, `expected a tag name after '<'`);
      const name = (m as RegExpExecArray)[0];
      i += name.length;
      const el: XmlElement = { name, attributes: {}, children: [], text: '', line: lineAt(at) };
      let selfClosing = false;
      for (;;) {
        while (/\s/.test(text[i] ?? '')) i++;
        if (i >= text.length) fail(at, `unterminated tag <${name}`);
        if (text[i] === '>') {
          i++;
          break;
        }
        if (text.startsWith('/>', i)) {
          i += 2;
          selfClosing = true;
          break;
        }
        const a = NAME.exec(text.slice(i, i + 200));
        if (!a) fail(i, `bad attribute in <${name}>`);
        const attr = (a as RegExpExecArray)[0];
        i += attr.length;
        while (/\s/.test(text[i] ?? '')) i++;
        if (text[i] === '=') i++;
        else fail(i, `attribute ${attr} of <${name}> needs a value (${attr}="...")`);
        while (/\s/.test(text[i] ?? '')) i++;
        const quote = text[i];
        if (quote !== '"' && quote !== "'") fail(i, `attribute ${attr} of <${name}> needs a quoted value`);
        i++;
        el.attributes[attr] = decode(skipTo(quote, `attribute ${attr} of <${name}>`), i);
      }
      if (stack.length) stack[stack.length - 1].children.push(el);
      else if (root) fail(at, `a second root element <${name}> (the first is <${root.name}>)`);
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length) fail(text.length, `<${stack[stack.length - 1].name}> (line ${stack[stack.length - 1].line}) is never closed`);
  if (!root) fail(0, 'no root element');
  return root as XmlElement;
}

/** The first child element called `name`, or undefined. */
export const child = (el: XmlElement, name: string): XmlElement | undefined => el.children.find((c) => c.name === name);
