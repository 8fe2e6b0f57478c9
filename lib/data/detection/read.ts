// Detection data sets from annotation files: COCO JSON (one file for every
// image) and Pascal VOC (one XML file per image). Both give samples of
// { path, width, height, boxes [N][x1, y1, x2, y2] in pixels, labels } and
// the class names, with classes[0] = '__background__' and labels 1..K as
// torchvision's detection models count them. Errors name the file and the
// annotation (COCO: its id; VOC: the object's index in its file).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ArgumentError, DataError } from '../../errors.js';
import { child, parseXml, type XmlElement } from './xml.js';

export const BACKGROUND = '__background__';

export interface DetectionSample {
  /** The image file. */
  path: string;
  /** The image's size as the annotations give it (checked against the decoded image when loaded). */
  width: number;
  height: number;
  /** [x1, y1, x2, y2] in pixels, x2 > x1, y2 > y1, inside the image. */
  boxes: number[][];
  /** Index into the data set's classes (1..K; 0 is the background). */
  labels: number[];
  /** COCO's image id, or VOC's file id. */
  id: number | string;
  /** VOC's "difficult" flag per box (COCO: none). */
  difficult?: boolean[];
}

export interface DetectionData {
  samples: DetectionSample[];
  /** classes[label]; classes[0] is '__background__'. */
  classes: string[];
  /** Boxes left out by `emptyBoxes: 'drop'` or `outside: 'drop'`. */
  droppedBoxes: number;
}

/** What to do with a box that is empty (x2 <= x1 or y2 <= y1) or reaches outside its image. */
export interface BoxChecks {
  /** 'error' (default), 'clip' to the image, or 'drop' the box. */
  outside?: 'error' | 'clip' | 'drop';
  /** 'error' (default) or 'drop' the box (real COCO files hold a few degenerate boxes; torchvision's references drop them). */
  emptyBoxes?: 'error' | 'drop';
}

export interface CocoData extends DetectionData {
  /** COCO's category id of each label (0 for the background and for unused ids). */
  categoryIds: number[];
  /** Crowd annotations (iscrowd 1) left out: regions of many objects, not object boxes. */
  skippedCrowd: number;
}

export interface CocoOptions extends BoxChecks {
  /**
   * Labels are COCO's category ids themselves, classes indexed by id with 'N/A'
   * in the gaps (torchvision's COCO-trained models count this way: 91 classes);
   * default false: labels 1..K in the order of the category ids.
   */
  categoryIdsAsLabels?: boolean;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function boxChecks(options: BoxChecks, fn: string): Required<BoxChecks> {
  const outside = options.outside ?? 'error';
  const emptyBoxes = options.emptyBoxes ?? 'error';
  if (!['error', 'clip', 'drop'].includes(outside))
    throw new ArgumentError(fn, `outside must be 'error', 'clip' or 'drop', got ${JSON.stringify(outside)}`, 'outside');
  if (!['error', 'drop'].includes(emptyBoxes))
    throw new ArgumentError(fn, `emptyBoxes must be 'error' or 'drop', got ${JSON.stringify(emptyBoxes)}`, 'emptyBoxes');
  return { outside, emptyBoxes };
}

/** Checks one box against its image: the box (clipped if so asked), or null to drop it; `where` names it in errors. */
function checkBox(box: number[], width: number, height: number, checks: Required<BoxChecks>, file: string, where: string): number[] | null {
  let [x1, y1, x2, y2] = box;
  if (!(x2 > x1) || !(y2 > y1)) {
    if (checks.emptyBoxes === 'drop') return null;
    throw new DataError(`${file}: ${where}: box [x1, y1, x2, y2] = [${box}] is empty: needs x2 > x1 and y2 > y1`, { path: file });
  }
  if (x1 < 0 || y1 < 0 || x2 > width || y2 > height) {
    if (checks.outside === 'drop') return null;
    if (checks.outside === 'error')
      throw new DataError(`${file}: ${where}: box [x1, y1, x2, y2] = [${box}] is outside its image (${width}x${height}, width x height)`, { path: file });
    [x1, y1, x2, y2] = [Math.max(0, x1), Math.max(0, y1), Math.min(width, x2), Math.min(height, y2)];
    if (!(x2 > x1) || !(y2 > y1)) {
      if (checks.emptyBoxes === 'drop') return null;
      throw new DataError(`${file}: ${where}: box [${box}] lies entirely outside its image (${width}x${height}, width x height)`, { path: file });
    }
  }
  return [x1, y1, x2, y2];
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`${what}: cannot read ${file}: ${(err as Error).message}`, { path: file, cause: err });
  }
}

/**
 * Reads a COCO annotation file (instances_*.json: images, annotations with
 * bbox [x, y, width, height], categories) whose images lie in `imagesDir`
 * under their file_name. Images without annotations are kept (no boxes).
 */
export function readCoco(annotationsJson: string, imagesDir: string, options: CocoOptions = {}): CocoData {
  const file = annotationsJson;
  const checks = boxChecks(options, 'readCoco');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readText(file, 'readCoco'));
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${file}: not valid JSON: ${(err as Error).message}`, { path: file, cause: err });
  }
  if (json == null || typeof json !== 'object') throw new DataError(`${file}: expected a JSON object with images, annotations and categories`, { path: file });
  const list = (key: string): Record<string, unknown>[] => {
    const v = json[key];
    if (!Array.isArray(v)) throw new DataError(`${file}: "${key}" must be an array`, { path: file });
    v.forEach((x, i) => {
      if (x == null || typeof x !== 'object' || Array.isArray(x)) throw new DataError(`${file}: ${key}[${i}] must be an object`, { path: file });
    });
    return v;
  };
  const images = list('images');
  const annotations = list('annotations');
  const categories = list('categories');

  const catIndex = new Map<number, string>();
  categories.forEach((c, i) => {
    if (!Number.isInteger(c.id) || (c.id as number) < 1)
      throw new DataError(`${file}: categories[${i}].id must be a positive integer, got ${JSON.stringify(c.id)}`, { path: file });
    if (typeof c.name !== 'string') throw new DataError(`${file}: category ${c.id}: "name" must be a string`, { path: file });
    if (catIndex.has(c.id as number)) throw new DataError(`${file}: category id ${c.id} appears twice`, { path: file });
    catIndex.set(c.id as number, c.name);
  });
  const ids = [...catIndex.keys()].sort((a, b) => a - b);
  let classes: string[];
  let categoryIds: number[];
  const labelOf = new Map<number, number>();
  if (options.categoryIdsAsLabels) {
    const top = ids.length ? ids[ids.length - 1] : 0;
    if (top > 10_000)
      throw new ArgumentError(
        'readCoco',
        `categoryIdsAsLabels needs small category ids (a class per id up to the largest), but ${file} has id ${top}`,
        'categoryIdsAsLabels',
      );
    classes = Array.from({ length: top + 1 }, (_, id) => (id === 0 ? BACKGROUND : (catIndex.get(id) ?? 'N/A')));
    categoryIds = classes.map((_, id) => (catIndex.has(id) ? id : 0));
    for (const id of ids) labelOf.set(id, id);
  } else {
    classes = [BACKGROUND, ...ids.map((id) => catIndex.get(id) as string)];
    categoryIds = [0, ...ids];
    ids.forEach((id, k) => labelOf.set(id, k + 1));
  }

  const samples: DetectionSample[] = [];
  const byId = new Map<number, DetectionSample>();
  images.forEach((im, i) => {
    const what = `images[${i}] (id ${JSON.stringify(im.id)})`;
    if (!Number.isInteger(im.id)) throw new DataError(`${file}: ${what}: "id" must be an integer`, { path: file });
    if (typeof im.file_name !== 'string' || !im.file_name) throw new DataError(`${file}: ${what}: "file_name" must be a file name`, { path: file });
    if (!Number.isInteger(im.width) || !Number.isInteger(im.height) || (im.width as number) < 1 || (im.height as number) < 1)
      throw new DataError(`${file}: ${what}: "width" and "height" must be positive integers`, { path: file });
    if (byId.has(im.id as number)) throw new DataError(`${file}: image id ${im.id} appears twice`, { path: file });
    const path = join(imagesDir, im.file_name);
    if (!existsSync(path)) throw new DataError(`${file}: image id ${im.id}: ${path} does not exist`, { path: file });
    const s: DetectionSample = { path, width: im.width as number, height: im.height as number, boxes: [], labels: [], id: im.id as number };
    byId.set(s.id as number, s);
    samples.push(s);
  });

  let skippedCrowd = 0;
  let droppedBoxes = 0;
  annotations.forEach((a, i) => {
    const what = `annotation id ${a.id ?? `(none, annotations[${i}])`}`;
    const s = byId.get(a.image_id as number);
    if (!s) throw new DataError(`${file}: ${what}: image_id ${JSON.stringify(a.image_id)} is not among the images`, { path: file });
    if (!catIndex.has(a.category_id as number))
      throw new DataError(`${file}: ${what}: unknown category_id ${JSON.stringify(a.category_id)} (the categories are ${ids.join(', ')})`, { path: file });
    if (a.iscrowd === 1 || a.iscrowd === true) {
      skippedCrowd++;
      return;
    }
    const b = a.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every(isNumber))
      throw new DataError(`${file}: ${what}: bbox must be [x, y, width, height] (4 numbers), got ${JSON.stringify(b)}`, { path: file });
    const box = checkBox([b[0], b[1], b[0] + b[2], b[1] + b[3]], s.width, s.height, checks, file, `${what} (image ${basename(s.path)})`);
    if (!box) {
      droppedBoxes++;
      return;
    }
    s.boxes.push(box);
    s.labels.push(labelOf.get(a.category_id as number) as number);
  });
  return { samples, classes, categoryIds, skippedCrowd, droppedBoxes };
}

export interface VocOptions extends BoxChecks {
  /** Read the ids listed in ImageSets/Main/<split>.txt ('train', 'val', 'trainval', 'test'); default: every Annotations/*.xml. */
  split?: string;
  /** The class names, in label order (labels 1..K); default: the names found, sorted. An object of another name is an error. */
  classes?: string[];
  /** Keep objects marked difficult (default true; their flags are in `difficult`). */
  difficult?: boolean;
}

interface VocObject {
  name: string;
  box: number[];
  difficult: boolean;
  index: number;
}

/**
 * Reads a Pascal VOC folder: Annotations/<id>.xml, JPEGImages/<filename>,
 * ImageSets/Main/<split>.txt. VOC's corners are 1-based pixel indices,
 * inclusive: a box is [xmin - 1, ymin - 1, xmax, ymax] in pixels (as
 * Detectron2 reads them), so xmin = 1, xmax = width covers the image.
 */
export function readVoc(folder: string, options: VocOptions = {}): DetectionData {
  const checks = boxChecks(options, 'readVoc');
  let droppedBoxes = 0;
  const annotationsDir = join(folder, 'Annotations');
  let ids: string[];
  if (options.split !== undefined) {
    const list = join(folder, 'ImageSets', 'Main', `${options.split}.txt`);
    ids = readText(list, 'readVoc')
      .split(/\r?\n/)
      .map((l) => l.trim().split(/\s+/)[0])
      .filter(Boolean);
    if (!ids.length) throw new DataError(`readVoc: ${list} lists no image ids`, { path: list });
  } else {
    let names: string[];
    try {
      names = readdirSync(annotationsDir);
    } catch (err) {
      throw new DataError(`readVoc: cannot read ${annotationsDir}: ${(err as Error).message} (expected a VOC folder with Annotations/, JPEGImages/)`, {
        path: annotationsDir,
        cause: err,
      });
    }
    ids = names
      .filter((n) => n.toLowerCase().endsWith('.xml'))
      .map((n) => n.slice(0, -4))
      .sort();
    if (!ids.length) throw new DataError(`readVoc: ${annotationsDir} has no .xml files`, { path: annotationsDir });
  }

  const read = ids.map((id) => {
    const file = join(annotationsDir, `${id}.xml`);
    const root = parseXml(readText(file, 'readVoc'), file);
    const fail = (where: string, detail: string): never => {
      throw new DataError(`${file}: ${where}: ${detail}`, { path: file });
    };
    if (root.name !== 'annotation') fail('root', `expected <annotation>, got <${root.name}>`);
    const text = (el: XmlElement | undefined) => el?.text.trim();
    const size = child(root, 'size');
    const width = Number(text(size && child(size, 'width')));
    const height = Number(text(size && child(size, 'height')));
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) fail('<size>', 'needs <width> and <height> as positive integers');
    const filename = text(child(root, 'filename')) || `${id}.jpg`;
    const path = join(folder, 'JPEGImages', filename);
    if (!existsSync(path)) fail('<filename>', `${path} does not exist`);
    const objects: VocObject[] = [];
    root.children
      .filter((c) => c.name === 'object')
      .forEach((o, index) => {
        const where = `object ${index} (line ${o.line})`;
        const name = text(child(o, 'name'));
        if (!name) fail(where, 'has no <name>');
        const bb = child(o, 'bndbox');
        if (!bb) fail(where, 'has no <bndbox>');
        const corners = ['xmin', 'ymin', 'xmax', 'ymax'].map((k) => {
          const v = text(child(bb as XmlElement, k));
          const n = Number(v);
          if (!v || !Number.isFinite(n)) fail(where, `<bndbox> needs <${k}> as a number, got ${JSON.stringify(v ?? null)}`);
          return n;
        });
        const box = checkBox([corners[0] - 1, corners[1] - 1, corners[2], corners[3]], width, height, checks, file, `${where}, ${name}`);
        if (!box) {
          droppedBoxes++;
          return;
        }
        objects.push({ name: name as string, box, difficult: text(child(o, 'difficult')) === '1', index });
      });
    return { id, file, path, width, height, objects };
  });

  const names = options.classes ?? [...new Set(read.flatMap((r) => r.objects.map((o) => o.name)))].sort();
  const labelOf = new Map(names.map((n, k) => [n, k + 1]));
  const keepDifficult = options.difficult ?? true;
  const samples = read.map((r) => {
    const kept = r.objects.filter((o) => keepDifficult || !o.difficult);
    for (const o of kept)
      if (!labelOf.has(o.name))
        throw new DataError(`${r.file}: object ${o.index}: unknown class ${JSON.stringify(o.name)} (the classes are ${names.join(', ')})`, { path: r.file });
    return {
      path: r.path,
      width: r.width,
      height: r.height,
      boxes: kept.map((o) => o.box),
      labels: kept.map((o) => labelOf.get(o.name) as number),
      id: r.id,
      difficult: kept.map((o) => o.difficult),
    };
  });
  return { samples, classes: [BACKGROUND, ...names], droppedBoxes };
}
