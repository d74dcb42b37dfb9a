/**
 * Server-side re-encoding of uploaded images with sharp (libvips). What is stored and served is
 * our encoder's output, never the client's bytes: a polyglot's second personality, trailing data,
 * EXIF GPS and other metadata do not survive a decode and re-encode.
 */
import sharp from 'sharp';
import type { FormatEnum, Metadata, Sharp, SharpOptions } from 'sharp';

// libvips caches decoded images and operations for reuse; a server that decodes each upload once
// would only see that cache grow. Set once, here: sharp's options are process-wide.
sharp.cache(false);

export type VariantName = 'THUMB_256' | 'MEDIUM_1024';

/** Longest side, in pixels, of each variant. */
export const VARIANT_SIZES: Readonly<Record<VariantName, number>> = Object.freeze({ THUMB_256: 256, MEDIUM_1024: 1024 });

export type ImageRejection = 'PIXEL_LIMIT' | 'UNDECODABLE' | 'FORMAT_MISMATCH' | 'UNSUPPORTED';

/** Why an image was refused. The message is safe to show the uploader: it never quotes libvips. */
export class ImageRejectedError extends Error {
  constructor(
    readonly reason: ImageRejection,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ImageRejectedError';
  }
}

export interface ProcessedImage {
  readonly data: Buffer;
  readonly mime: string;
  /** Of one frame, after orientation. */
  readonly width: number;
  readonly height: number;
}

export interface ReencodeOptions {
  /** Keep EXIF (GPS included), XMP, IPTC and the ICC profile: only when the owner asked for it. */
  readonly keepMetadata: boolean;
  /** Largest width × height (all frames of an animation together) that will be decoded. */
  readonly maxPixels: number;
}

/** Decodes, applies the EXIF orientation, strips metadata (unless keepMetadata), re-encodes in the same format. */
export async function reencodeImage(input: Buffer, sniffedMime: string, options: ReencodeOptions): Promise<ProcessedImage> {
  return transcode(input, sniffedMime, options);
}

/** A smaller rendition (fit inside size×size, never enlarged), metadata stripped, same format as the input. */
export async function makeVariant(image: Buffer, mime: string, variant: VariantName, maxPixels: number): Promise<ProcessedImage> {
  if (!Object.hasOwn(VARIANT_SIZES, variant)) throw new RangeError(`Unknown image variant ${variant}`);
  return transcode(image, mime, { keepMetadata: false, maxPixels, fitInside: VARIANT_SIZES[variant] });
}

/** Whether this build's libvips can decode the type (prebuilt sharp has no HEVC, so no HEIC). */
export function canDecode(mime: string): boolean {
  return DECODABLE_MIMES.has(mime);
}

interface RasterFormat {
  /** What sharp's metadata().format says for this type. */
  readonly decoder: keyof FormatEnum;
  /** HEIF holds both AVIF and HEIC: the compression tells them apart. */
  readonly heifCompression?: 'av1' | 'hevc';
  /** The suffix sharp.format lists when its libvips can load the type (.heic is absent from the prebuilt binaries). */
  readonly fileSuffix: string;
  /** Animated GIF and WebP keep their frames; the other formats are read as one image. */
  readonly animatable: boolean;
  encode(pipeline: Sharp, header: Metadata): Sharp;
}

/** The only types ever handed to sharp. A Map, so a MIME type like "constructor" finds nothing. */
const RASTER_FORMATS: ReadonlyMap<string, RasterFormat> = new Map<string, RasterFormat>([
  [
    'image/jpeg',
    {
      decoder: 'jpeg',
      fileSuffix: '.jpg',
      animatable: false,
      // Plain libjpeg: mozjpeg's trellis quantisation saves ~9% of the bytes at five times the time (1.4 s for 12 MP here).
      encode: (pipeline) => pipeline.jpeg({ quality: 85 }),
    },
  ],
  [
    'image/png',
    {
      decoder: 'png',
      fileSuffix: '.png',
      animatable: false,
      // A palette PNG re-encoded as truecolour would grow several times over.
      encode: (pipeline, header) => pipeline.png({ compressionLevel: 6, palette: header.isPalette }),
    },
  ],
  ['image/gif', { decoder: 'gif', fileSuffix: '.gif', animatable: true, encode: (pipeline) => pipeline.gif() }],
  ['image/webp', { decoder: 'webp', fileSuffix: '.webp', animatable: true, encode: (pipeline) => pipeline.webp({ quality: 85 }) }],
  [
    'image/avif',
    {
      decoder: 'heif',
      heifCompression: 'av1',
      fileSuffix: '.avif',
      animatable: false,
      // Effort 2: at 4 a 3-megapixel AVIF took 7.7 s on two cores, at 2 about 2.3 s.
      encode: (pipeline) => pipeline.avif({ quality: 60, effort: 2 }),
    },
  ],
  [
    'image/heic',
    {
      decoder: 'heif',
      heifCompression: 'hevc',
      fileSuffix: '.heic',
      animatable: false,
      encode: (pipeline) => pipeline.heif({ compression: 'hevc', quality: 60, effort: 4 }),
    },
  ],
]);

const DECODABLE_MIMES: ReadonlySet<string> = new Set(
  [...RASTER_FORMATS].filter(([, format]) => libvipsLoads(format)).map(([mime]) => mime),
);

function libvipsLoads(format: RasterFormat): boolean {
  const input = sharp.format[format.decoder]?.input;
  return input !== undefined && input.buffer && (input.fileSuffix ?? []).includes(format.fileSuffix);
}

interface TranscodeJob extends ReencodeOptions {
  /** Fit inside a square of this side, never enlarging. */
  readonly fitInside?: number;
}

async function transcode(input: Buffer, mime: string, job: TranscodeJob): Promise<ProcessedImage> {
  assertPixelLimit(job.maxPixels);
  const format = decodableFormat(mime);
  const header = await readCheckedHeader(input, mime, format, job.maxPixels);
  const pipeline = format.encode(buildPipeline(input, header, job), header);
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return { data, mime, width: info.width, height: info.pageHeight ?? info.height };
  } catch (error) {
    throw new ImageRejectedError('UNDECODABLE', 'The image data is damaged or incomplete.', { cause: error });
  }
}

/** sharp reads a limit of 0 as "no limit": a misconfiguration must not turn the guard off. */
function assertPixelLimit(maxPixels: number): void {
  if (!Number.isSafeInteger(maxPixels) || maxPixels <= 0) throw new RangeError(`maxPixels must be a positive integer, got ${maxPixels}`);
}

function decodableFormat(mime: string): RasterFormat {
  const format = RASTER_FORMATS.get(mime);
  if (!format || !canDecode(mime)) throw new ImageRejectedError('UNSUPPORTED', `Images of type ${mime} are not accepted.`);
  return format;
}

/**
 * The header only, no pixels: the decoder must agree with the sniffed type (else a polyglot or a
 * lie), and the dimensions must fit the limit before a single pixel is decompressed. The limit is
 * checked here rather than left to sharp's limitInputPixels so the refusal is PIXEL_LIMIT, not a
 * decoder error; the decode keeps sharp's limit as a second guard.
 */
async function readCheckedHeader(input: Buffer, mime: string, format: RasterFormat, maxPixels: number): Promise<Metadata> {
  let header: Metadata;
  try {
    header = await sharp(input, { ...decoderOptions(format.animatable), limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ImageRejectedError('UNDECODABLE', 'The image could not be read.', { cause: error });
  }
  if (header.format !== format.decoder || (format.heifCompression !== undefined && header.compression !== format.heifCompression)) {
    throw new ImageRejectedError('FORMAT_MISMATCH', `The image data is not the ${mime} its signature announces.`);
  }
  // Opened as animated, height covers every frame: a bomb can be many modest frames.
  const pixels = header.width * header.height;
  if (!(pixels <= maxPixels)) {
    throw new ImageRejectedError('PIXEL_LIMIT', `The image has ${pixels} pixels; at most ${maxPixels} are accepted.`);
  }
  return header;
}

function decoderOptions(animated: boolean): SharpOptions {
  // 'error' refuses truncated and corrupt data; 'warning' would also refuse the harmless quirks
  // of many cameras' JPEGs (extraneous bytes before a marker).
  return { failOn: 'error', sequentialRead: true, animated };
}

function buildPipeline(input: Buffer, header: Metadata, job: TranscodeJob): Sharp {
  // libvips cannot rotate an animation except by 180°: an oriented animation (a rare WebP) keeps its first frame only.
  const needsOrientation = (header.orientation ?? 1) !== 1;
  const animated = (header.pages ?? 1) > 1 && !needsOrientation;
  let pipeline = sharp(input, { ...decoderOptions(animated), limitInputPixels: job.maxPixels });
  if (!animated) pipeline = pipeline.rotate();
  if (job.fitInside !== undefined) {
    pipeline = pipeline.resize({ width: job.fitInside, height: job.fitInside, fit: 'inside', withoutEnlargement: true });
  }
  // Without keepMetadata sharp writes no EXIF, XMP, IPTC, comments or ICC (pixels converted to sRGB).
  return job.keepMetadata ? pipeline.keepMetadata() : pipeline;
}
