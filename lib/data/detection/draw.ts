// Boxes drawn onto an image, as PNG: each box's outline in its colour and,
// above its top-left corner (inside the image), its caption ("Sneaker 0.93")
// on a filled tag. The drawing is an SVG laid over the image by sharp, so the
// image keeps its size; grey images come out as RGB.
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { ArgumentError, DataError } from '../../errors.js';

export interface DrawnBox {
  /** [x1, y1, x2, y2] in the image's pixels. */
  box: ArrayLike<number>;
  /** The caption (e.g. the class name and score); none: the outline only. */
  text?: string;
  /** A CSS colour; default the palette's colour for `colorIndex` (or the box's position). */
  color?: string;
  /** Picks the palette colour (e.g. the label, so a class keeps its colour). */
  colorIndex?: number;
}

export interface DrawOptions {
  /** The outline's width in pixels (default 2). */
  lineWidth?: number;
  /** The caption's font size in pixels (default 11). */
  fontSize?: number;
  /** Also write the PNG to this file. */
  out?: string;
}

/** Ten colours that stand out from each other and from grey photos (Tableau 10). */
export const BOX_PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
const num = (v: number) => Math.round(v * 100) / 100;

/**
 * Draws `boxes` onto `image` (a file, encoded bytes, or raw uint8 pixels with
 * their width, height and channels) and returns the PNG. Boxes are clipped to
 * the image; a box that is not four finite numbers is an error naming it.
 */
export async function drawBoxes(
  image: string | Buffer | { data: Uint8Array; width: number; height: number; channels: 1 | 2 | 3 | 4 },
  boxes: DrawnBox[],
  options: DrawOptions = {},
): Promise<Buffer> {
  const fn = 'data.detection.drawBoxes';
  const lineWidth = options.lineWidth ?? 2;
  const fontSize = options.fontSize ?? 11;
  if (!(lineWidth > 0) || !(fontSize > 0)) throw new ArgumentError(fn, `lineWidth and fontSize must be above 0, got ${lineWidth} and ${fontSize}`, 'options');
  const source =
    typeof image === 'string' || Buffer.isBuffer(image)
      ? sharp(image)
      : sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
          raw: { width: image.width, height: image.height, channels: image.channels },
        });
  let width: number;
  let height: number;
  let rgb: Buffer;
  try {
    // decoded to RGB first, so a grey image takes coloured boxes
    const { data, info } = await source.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    ({ width, height } = info);
    rgb =
      info.channels === 3
        ? data
        : await sharp(data, { raw: { width, height, channels: info.channels } })
            .extractChannel(0)
            .toColourspace('srgb')
            .raw()
            .toBuffer();
  } catch (err) {
    const what = typeof image === 'string' ? image : 'the image';
    throw new DataError(`${fn}: cannot read ${what}: ${(err as Error).message}`, typeof image === 'string' ? { path: image } : {});
  }
  const parts: string[] = [];
  boxes.forEach((b, i) => {
    const c = Array.from(b?.box ?? [], Number);
    if (c.length !== 4 || !c.every(Number.isFinite))
      throw new ArgumentError(fn, `boxes[${i}].box must be four finite numbers [x1, y1, x2, y2], got ${JSON.stringify(b?.box)}`, 'boxes');
    const color = escapeXml(b.color ?? BOX_PALETTE[(b.colorIndex ?? i) % BOX_PALETTE.length]);
    // the outline inside the image (a box on the border keeps its whole line)
    const half = lineWidth / 2;
    const x1 = Math.min(Math.max(c[0], half), width - half);
    const y1 = Math.min(Math.max(c[1], half), height - half);
    const x2 = Math.min(Math.max(c[2], half), width - half);
    const y2 = Math.min(Math.max(c[3], half), height - half);
    parts.push(
      `<rect x="${num(x1)}" y="${num(y1)}" width="${num(Math.max(0, x2 - x1))}" height="${num(Math.max(0, y2 - y1))}" fill="none" stroke="${color}" stroke-width="${lineWidth}"/>`,
    );
    if (b.text) {
      const tagHeight = Math.ceil(fontSize * 1.3);
      const tagWidth = Math.ceil(b.text.length * fontSize * 0.62 + 4);
      // above the box where there is room, else inside its top edge
      const top = y1 - tagHeight >= 0 ? y1 - tagHeight : y1;
      const left = Math.max(0, Math.min(x1 - half, width - tagWidth));
      parts.push(
        `<rect x="${num(left)}" y="${num(top)}" width="${tagWidth}" height="${tagHeight}" fill="${color}"/>`,
        `<text x="${num(left + 2)}" y="${num(top + fontSize)}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="white">${escapeXml(b.text)}</text>`,
      );
    }
  });
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`);
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: svg, top: 0, left: 0 }])
    .removeAlpha()
    .png()
    .toBuffer();
  if (options.out) writeFileSync(options.out, png);
  return png;
}
