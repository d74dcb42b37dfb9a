import sharp from 'sharp';
import { sniffContentType } from '../../../src/files/content-sniffer';
import { ImageRejectedError, VARIANT_SIZES, canDecode, makeVariant, reencodeImage } from '../../../src/files/image-processor';
import { PNG_SIGNATURE, pngChunk, pngDeclaring } from '../../support/files';

const MAX_PIXELS = 50_000_000;
const STRIP = { keepMetadata: false, maxPixels: MAX_PIXELS };
const KEEP = { keepMetadata: true, maxPixels: MAX_PIXELS };

const RED = { r: 255, g: 0, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };

const solid = (width: number, height: number, background: string | typeof RED) =>
  sharp({ create: { width, height, channels: 3, background } });

/** GPSLatitude 51/1 30/1 0/1 as the little-endian rationals libexif writes: the fix itself, in bytes. */
const GPS_LATITUDE_BYTES = Buffer.from(new Uint32Array([51, 1, 30, 1, 0, 1]).buffer);

/** A JPEG segment (marker, 2-byte length that counts itself, payload). */
function jpegSegment(marker: number, payload: Buffer): Buffer {
  const header = Buffer.from([0xff, marker, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([header, payload]);
}

/** A Photoshop APP13 segment holding one IPTC dataset, 2:120 (caption). */
function iptcCaptionSegment(caption: string): Buffer {
  const text = Buffer.from(caption, 'latin1');
  const dataset = Buffer.concat([Buffer.from([0x1c, 0x02, 0x78, text.length >> 8, text.length & 0xff]), text]);
  const padded = dataset.length % 2 ? Buffer.concat([dataset, Buffer.alloc(1)]) : dataset;
  const size = Buffer.alloc(4);
  size.writeUInt32BE(dataset.length);
  const resource = Buffer.concat([Buffer.from('8BIM', 'latin1'), Buffer.from([0x04, 0x04, 0, 0]), size, padded]);
  return jpegSegment(0xed, Buffer.concat([Buffer.from('Photoshop 3.0\0', 'latin1'), resource]));
}

/** Inserts segments right after the JPEG's SOI marker. */
const withJpegSegments = (jpeg: Buffer, ...segments: Buffer[]) => Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);

/** A phone photo's worth of private metadata: EXIF with GPS, XMP, IPTC and a comment. */
async function jpegWithPrivateMetadata(): Promise<Buffer> {
  const jpeg = await solid(64, 48, '#808080')
    .jpeg()
    .withExif({
      IFD0: { Make: 'SecretCam', Model: 'Model-X' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '51/1 30/1 0/1',
        GPSLongitudeRef: 'W',
        GPSLongitude: '0/1 7/1 0/1',
        GPSMapDatum: 'SECRET-DATUM',
      },
    })
    .withXmp(
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>XMP-SECRET-AUTHOR</dc:creator>' +
        '</rdf:Description></rdf:RDF></x:xmpmeta>',
    )
    .toBuffer();
  return withJpegSegments(jpeg, jpegSegment(0xfe, Buffer.from('SECRET-COMMENT', 'latin1')), iptcCaptionSegment('IPTC-SECRET-CAPTION'));
}

const PRIVATE_STRINGS = ['SecretCam', 'Model-X', 'SECRET-DATUM', 'XMP-SECRET-AUTHOR', 'SECRET-COMMENT', 'IPTC-SECRET-CAPTION'];

/** Inserts a tEXt chunk after IHDR (the signature is 8 bytes, IHDR 25). */
function withPngText(png: Buffer, keyword: string, text: string): Buffer {
  const chunk = pngChunk('tEXt', Buffer.from(`${keyword}\0${text}`, 'latin1'));
  return Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
}

/** Red, green and blue frames (identical frames would be merged by the encoder), 100, 200 and 300 ms. */
async function threeFrameGif(width: number, height: number): Promise<Buffer> {
  const frames = await Promise.all(['#f00', '#0f0', '#00f'].map((colour) => solid(width, height, colour).png().toBuffer()));
  return sharp(frames, { join: { animated: true } })
    .gif({ delay: [100, 200, 300], loop: 0 })
    .toBuffer();
}

async function pixelAt(image: Buffer, x: number, y: number) {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const offset = (y * info.width + x) * info.channels;
  return { r: data[offset], g: data[offset + 1], b: data[offset + 2] };
}

/** Red or blue within JPEG's error, else other. */
function colourName({ r, g, b }: { r: number; g: number; b: number }): 'red' | 'blue' | 'other' {
  if (r > 220 && g < 40 && b < 40) return 'red';
  if (b > 220 && r < 40 && g < 40) return 'blue';
  return 'other';
}

describe('reencodeImage: metadata', () => {
  it('strips EXIF (GPS included), XMP, IPTC and comments by default', async () => {
    const input = await jpegWithPrivateMetadata();
    const before = await sharp(input).metadata();
    // The fixture really carries what must go.
    expect(before.exif?.includes(GPS_LATITUDE_BYTES)).toBe(true);
    expect(before.exif?.includes('SECRET-DATUM')).toBe(true);
    expect(before.xmpAsString).toContain('XMP-SECRET-AUTHOR');
    expect(before.iptc?.includes('IPTC-SECRET-CAPTION')).toBe(true);

    const output = await reencodeImage(input, 'image/jpeg', STRIP);

    expect(output).toMatchObject({ mime: 'image/jpeg', width: 64, height: 48 });
    const after = await sharp(output.data).metadata();
    expect(after.format).toBe('jpeg');
    expect(after.exif).toBeUndefined();
    expect(after.xmp).toBeUndefined();
    expect(after.iptc).toBeUndefined();
    expect(after.comments).toBeUndefined();
    expect(output.data.includes(GPS_LATITUDE_BYTES)).toBe(false);
    for (const secret of PRIVATE_STRINGS) expect(output.data.includes(secret)).toBe(false);
  });

  it('keeps EXIF, GPS included, when the owner asks for it', async () => {
    const output = await reencodeImage(await jpegWithPrivateMetadata(), 'image/jpeg', KEEP);

    const after = await sharp(output.data).metadata();
    expect(after.exif?.includes('SecretCam')).toBe(true);
    expect(after.exif?.includes(GPS_LATITUDE_BYTES)).toBe(true);
    expect(after.xmpAsString).toContain('XMP-SECRET-AUTHOR');
  });

  it('strips PNG text chunks', async () => {
    const input = withPngText(await solid(16, 16, '#00ff00').png().toBuffer(), 'Comment', 'PNG-SECRET-TEXT');
    expect((await sharp(input).metadata()).comments).toEqual([{ keyword: 'Comment', text: 'PNG-SECRET-TEXT' }]);

    const output = await reencodeImage(input, 'image/png', STRIP);

    expect((await sharp(output.data).metadata()).comments).toBeUndefined();
    expect(output.data.includes('PNG-SECRET-TEXT')).toBe(false);
  });

  it('drops what follows the image: a JPEG with an HTML page appended comes back without it', async () => {
    const polyglot = Buffer.concat([await solid(16, 16, '#ffffff').jpeg().toBuffer(), Buffer.from('<html><script>alert(1)</script>')]);

    const output = await reencodeImage(polyglot, 'image/jpeg', STRIP);

    expect(output.data.includes('<script>')).toBe(false);
    expect(output.data.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9])); // ends at its EOI marker
  });
});

describe('reencodeImage: orientation', () => {
  /** Stored 200×100, left half red and right half blue, tagged "rotate 90° clockwise to display". */
  const orientedJpeg = () =>
    solid(200, 100, BLUE)
      .composite([{ input: { create: { width: 100, height: 100, channels: 3, background: RED } }, left: 0, top: 0 }])
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();

  it('applies EXIF orientation 6: 200×100 stored comes back 100×200, upright, without the tag', async () => {
    const output = await reencodeImage(await orientedJpeg(), 'image/jpeg', STRIP);

    expect(output).toMatchObject({ width: 100, height: 200 });
    const after = await sharp(output.data).metadata();
    expect([after.width, after.height, after.orientation]).toEqual([100, 200, undefined]);
    // Rotated clockwise, the stored left half (red) is on top.
    expect(colourName(await pixelAt(output.data, 50, 40))).toBe('red');
    expect(colourName(await pixelAt(output.data, 50, 160))).toBe('blue');
  });

  it('keeps metadata with the orientation normalised, so viewers do not rotate twice', async () => {
    const output = await reencodeImage(await orientedJpeg(), 'image/jpeg', KEEP);

    const after = await sharp(output.data).metadata();
    expect([after.width, after.height, after.orientation]).toEqual([100, 200, 1]);
  });
});

describe('reencodeImage: formats', () => {
  const base = solid(40, 30, '#3366cc');
  const encoders: [string, () => Promise<Buffer>][] = [
    ['image/jpeg', () => base.clone().jpeg().toBuffer()],
    ['image/png', () => base.clone().png().toBuffer()],
    ['image/gif', () => base.clone().gif().toBuffer()],
    ['image/webp', () => base.clone().webp().toBuffer()],
    ['image/avif', () => base.clone().avif().toBuffer()],
  ];

  it.each(encoders)('re-encodes %s as the same type', async (mime, encode) => {
    const output = await reencodeImage(await encode(), mime, STRIP);

    expect(output).toMatchObject({ mime, width: 40, height: 30 });
    expect(sniffContentType(output.data)).toEqual({ mime, image: true });
  });

  it('keeps the frames, delays and size of an animated GIF', async () => {
    const gif = await threeFrameGif(30, 20);

    const output = await reencodeImage(gif, 'image/gif', STRIP);

    expect(output).toMatchObject({ width: 30, height: 20 });
    const after = await sharp(output.data).metadata();
    expect([after.pages, after.delay]).toEqual([3, [100, 200, 300]]);
  });

  it('keeps only the first frame of an animation that needs orienting (libvips rotates animations by 180° only)', async () => {
    const frames = await Promise.all(['#f00', '#00f'].map((colour) => solid(40, 20, colour).png().toBuffer()));
    const orientedWebp = await sharp(frames, { join: { animated: true } })
      .webp()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect(await sharp(orientedWebp).metadata()).toMatchObject({ pages: 2, orientation: 6 });

    const output = await reencodeImage(orientedWebp, 'image/webp', STRIP);

    expect(output).toMatchObject({ width: 20, height: 40 });
    expect((await sharp(output.data).metadata()).pages ?? 1).toBe(1);
  });

  it('keeps a palette PNG a palette PNG', async () => {
    const palettePng = await solid(64, 64, '#123456').png({ palette: true }).toBuffer();

    const output = await reencodeImage(palettePng, 'image/png', STRIP);

    expect((await sharp(output.data).metadata()).isPalette).toBe(true);
  });
});

describe('reencodeImage: refusals', () => {
  it('refuses PNG bytes claimed as JPEG (FORMAT_MISMATCH)', async () => {
    const png = await solid(10, 10, '#000').png().toBuffer();
    await expect(reencodeImage(png, 'image/jpeg', STRIP)).rejects.toMatchObject({ name: 'ImageRejectedError', reason: 'FORMAT_MISMATCH' });
  });

  it('refuses JPEG bytes claimed as AVIF (FORMAT_MISMATCH)', async () => {
    const jpeg = await solid(10, 10, '#000').jpeg().toBuffer();
    await expect(reencodeImage(jpeg, 'image/avif', STRIP)).rejects.toMatchObject({ reason: 'FORMAT_MISMATCH' });
  });

  it('refuses a 30000×30000 pixel bomb from its header, fast and without allocating the pixels', async () => {
    const bomb = pngDeclaring(30_000, 30_000);
    expect(bomb.length).toBeLessThan(200);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();

    const refusal = reencodeImage(bomb, 'image/png', { keepMetadata: false, maxPixels: 40_000_000 });

    await expect(refusal).rejects.toBeInstanceOf(ImageRejectedError);
    await expect(refusal).rejects.toMatchObject({
      reason: 'PIXEL_LIMIT',
      message: 'The image has 900000000 pixels; at most 40000000 are accepted.',
    });
    expect(performance.now() - started).toBeLessThan(1000);
    // Decoded, it would be 2.7 GB of RGB.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it('counts every frame of an animation against the limit', async () => {
    const gif = await threeFrameGif(300, 200);
    expect((await sharp(gif).metadata()).pages).toBe(3);

    // One frame (60 000 pixels) fits; three (180 000) do not.
    await expect(reencodeImage(gif, 'image/gif', { keepMetadata: false, maxPixels: 150_000 })).rejects.toMatchObject({
      reason: 'PIXEL_LIMIT',
    });
  });

  it('refuses a truncated JPEG as UNDECODABLE, with a message that says nothing of libvips', async () => {
    const jpeg = await sharp({
      create: { width: 300, height: 300, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
    })
      .jpeg()
      .toBuffer();

    await expect(reencodeImage(jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'image/jpeg', STRIP)).rejects.toMatchObject({
      reason: 'UNDECODABLE',
      message: 'The image data is damaged or incomplete.',
    });
  });

  it.each([
    ['JPEG', 'image/jpeg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('garbage garbage garbage')])],
    ['PNG', 'image/png', Buffer.concat([PNG_SIGNATURE, Buffer.from('garbage garbage garbage')])],
    ['GIF', 'image/gif', Buffer.from('GIF89a garbage garbage garbage')],
  ])('refuses a %s signature followed by garbage as UNDECODABLE', async (_label, mime, garbage) => {
    await expect(reencodeImage(garbage, mime, STRIP)).rejects.toMatchObject({
      reason: 'UNDECODABLE',
      message: 'The image could not be read.',
    });
  });

  it.each([
    ['SVG, which sharp could render', 'image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
    ['TIFF, which sharp could decode', 'image/tiff', Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0])],
    ['HEIC, which this build cannot decode', 'image/heic', Buffer.alloc(64)],
    ['a MIME type that names an object property', 'constructor', Buffer.alloc(64)],
  ])('never hands %s to sharp (UNSUPPORTED)', async (_label, mime, input) => {
    await expect(reencodeImage(input, mime, STRIP)).rejects.toMatchObject({ reason: 'UNSUPPORTED' });
  });

  it('refuses a limit of zero, which sharp would read as no limit at all', async () => {
    const png = await solid(10, 10, '#000').png().toBuffer();
    await expect(reencodeImage(png, 'image/png', { keepMetadata: false, maxPixels: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe('makeVariant', () => {
  it('defines the two variant sizes', () => {
    expect(VARIANT_SIZES).toEqual({ THUMB_256: 256, MEDIUM_1024: 1024 });
  });

  it('fits a 3000×2000 JPEG inside 256 and inside 1024, still a JPEG', async () => {
    const photo = await solid(3000, 2000, '#a0b0c0').jpeg().toBuffer();

    const thumb = await makeVariant(photo, 'image/jpeg', 'THUMB_256', MAX_PIXELS);
    const medium = await makeVariant(photo, 'image/jpeg', 'MEDIUM_1024', MAX_PIXELS);

    expect(thumb).toMatchObject({ mime: 'image/jpeg', width: 256, height: 171 });
    expect(medium).toMatchObject({ mime: 'image/jpeg', width: 1024, height: 683 });
    expect(await sharp(thumb.data).metadata()).toMatchObject({ format: 'jpeg', width: 256, height: 171 });
  });

  it('fits a portrait by its height', async () => {
    const portrait = await solid(2000, 3000, '#a0b0c0').png().toBuffer();
    await expect(makeVariant(portrait, 'image/png', 'THUMB_256', MAX_PIXELS)).resolves.toMatchObject({
      mime: 'image/png',
      width: 171,
      height: 256,
    });
  });

  it('never enlarges a 100×100 image', async () => {
    const small = await solid(100, 100, '#000').webp().toBuffer();
    await expect(makeVariant(small, 'image/webp', 'MEDIUM_1024', MAX_PIXELS)).resolves.toMatchObject({
      mime: 'image/webp',
      width: 100,
      height: 100,
    });
  });

  it('strips metadata', async () => {
    const variant = await makeVariant(await jpegWithPrivateMetadata(), 'image/jpeg', 'THUMB_256', MAX_PIXELS);

    expect((await sharp(variant.data).metadata()).exif).toBeUndefined();
    for (const secret of PRIVATE_STRINGS) expect(variant.data.includes(secret)).toBe(false);
  });

  it('applies the same checks as reencodeImage', async () => {
    await expect(makeVariant(pngDeclaring(30_000, 30_000), 'image/png', 'THUMB_256', MAX_PIXELS)).rejects.toMatchObject({
      reason: 'PIXEL_LIMIT',
    });
  });
});

describe('canDecode', () => {
  it.each(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif'])('decodes %s', (mime) => {
    expect(canDecode(mime)).toBe(true);
  });

  it("does not decode HEIC: sharp's prebuilt libvips has no HEVC decoder", () => {
    expect(sharp.format.heif.input.fileSuffix).toEqual(['.avif']);
    expect(canDecode('image/heic')).toBe(false);
  });

  it.each(['image/svg+xml', 'image/tiff', 'application/pdf', 'text/html', 'toString'])('does not decode %s', (mime) => {
    expect(canDecode(mime)).toBe(false);
  });
});
