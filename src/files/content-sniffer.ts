/**
 * The type of an upload, as its leading bytes prove it. The client's Content-Type and file name
 * are claims: a page named cat.jpg must never be stored, served or decoded as an image.
 *
 * Our own magic numbers rather than file-type, whose current major needs Node 22. Every check
 * looks at fixed offsets within the buffer it is given: a short buffer proves nothing.
 */

export interface SniffedType {
  readonly mime: string;
  /** A raster image sharp may decode (the image processor still checks what this build can decode). */
  readonly image: boolean;
}

/**
 * How many leading bytes sniffContentType needs at most. The binary signatures need 16; the rest
 * leaves room for an ftyp box's brand list and for an SVG's XML prolog, comments and doctype.
 */
export const SNIFF_BYTES = 4096;

/**
 * The types a file field may take: those the bytes can prove, markup aside. SVG, HTML and XML are
 * recognised only so that a refusal can name them: served, they could run in a browser.
 */
export const STORABLE_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/heic',
  'application/pdf',
  'application/zip',
  'application/gzip',
  'audio/mpeg',
  'audio/aac',
  'audio/mp4',
  'audio/wav',
  'audio/ogg',
  'video/mp4',
  'video/quicktime',
]);

/** The type the leading bytes prove, or undefined when they prove none we know. */
export function sniffContentType(head: Buffer): SniffedType | undefined {
  const window = head.subarray(0, SNIFF_BYTES);
  const mime = matchSignature(MAGIC_NUMBERS, window) ?? sniffIsoMedia(window) ?? sniffMarkup(window) ?? matchSignature(FRAME_SYNCS, window);
  return mime === undefined ? undefined : { mime, image: IMAGE_MIMES.has(mime) };
}

/**
 * Exactly the types the image processor may hand to sharp. Not SVG: markup can carry scripts and
 * external references, and it is never decoded here.
 */
const IMAGE_MIMES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/heic']);

interface Signature {
  readonly mime: string;
  matches(head: Buffer): boolean;
}

/**
 * True when `head` holds `bytes` at `offset` (a string is read as latin1, one byte per character).
 * subarray stops at the end of the buffer, so a short buffer yields a shorter slice: never equal.
 */
function hasBytes(head: Buffer, offset: number, bytes: string | readonly number[]): boolean {
  const expected = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  return head.subarray(offset, offset + expected.length).equals(expected);
}

const startsWith = (mime: string, bytes: string | readonly number[]): Signature => ({ mime, matches: (head) => hasBytes(head, 0, bytes) });

/** A RIFF container: the form type sits after the 4-byte chunk size. */
const riff = (mime: string, formType: string): Signature => ({
  mime,
  matches: (head) => hasBytes(head, 0, 'RIFF') && hasBytes(head, 8, formType),
});

/**
 * ID3v2 tag header: "ID3", a major version 2–4, a revision, flags, then a 28-bit size in four
 * bytes whose high bits are clear. Checking all of it keeps a text file starting "ID3" out.
 */
function isId3Tag(head: Buffer): boolean {
  if (head.length < 10 || !hasBytes(head, 0, 'ID3')) return false;
  const majorVersion = head[3];
  const sizeBytes = head.subarray(6, 10);
  return majorVersion >= 2 && majorVersion <= 4 && head[4] !== 0xff && sizeBytes.every((byte) => byte < 0x80);
}

/**
 * An AAC ADTS frame header: a 12-bit sync, layer 00, and a sampling-frequency index in range.
 * Checked before MPEG audio, whose sync it shares (layer 00 is reserved there).
 */
function isAdtsFrame(head: Buffer): boolean {
  if (head.length < 3) return false;
  const samplingIndex = (head[2] >> 2) & 0x0f;
  return head[0] === 0xff && (head[1] & 0xf6) === 0xf0 && samplingIndex <= 12;
}

/**
 * An MPEG audio frame header: an 11-bit sync, then every field that has a reserved value must
 * not hold it (version 01, layer 00, bitrate index 1111, sampling index 11). An 11-bit sync on
 * its own matches too much binary to prove anything.
 */
function isMpegAudioFrame(head: Buffer): boolean {
  if (head.length < 4 || head[0] !== 0xff || (head[1] & 0xe0) !== 0xe0) return false;
  const version = (head[1] >> 3) & 0x03;
  const layer = (head[1] >> 1) & 0x03;
  const bitrateIndex = head[2] >> 4;
  const samplingIndex = (head[2] >> 2) & 0x03;
  return version !== 0b01 && layer !== 0b00 && bitrateIndex !== 0x0f && samplingIndex !== 0b11;
}

const matchSignature = (signatures: readonly Signature[], head: Buffer) => signatures.find((signature) => signature.matches(head))?.mime;

/** Checked first, in order: the first that matches wins. */
const MAGIC_NUMBERS: readonly Signature[] = [
  startsWith('image/jpeg', [0xff, 0xd8, 0xff]),
  startsWith('image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  startsWith('image/gif', 'GIF87a'),
  startsWith('image/gif', 'GIF89a'),
  riff('image/webp', 'WEBP'),
  riff('audio/wav', 'WAVE'),
  startsWith('application/pdf', '%PDF-'),
  startsWith('audio/ogg', 'OggS'),
  startsWith('application/zip', 'PK\x03\x04'),
  startsWith('application/zip', 'PK\x05\x06'), // an empty archive: only the end-of-directory record
  // Deflate is the only compression method gzip defines.
  startsWith('application/gzip', [0x1f, 0x8b, 0x08]),
  { mime: 'audio/mpeg', matches: isId3Tag },
];

/**
 * Bare audio frame headers, checked last: with only a few bits of sync they are the weakest
 * proof (a UTF-16LE byte-order mark, FF FE, followed by a space reads as an MPEG frame header).
 */
const FRAME_SYNCS: readonly Signature[] = [
  { mime: 'audio/aac', matches: isAdtsFrame },
  { mime: 'audio/mpeg', matches: isMpegAudioFrame },
];

/**
 * ISO base media files (MP4, MOV, HEIF, AVIF) start with an ftyp box: size, "ftyp", a major
 * brand, a minor version, then compatible brands. The brands say what the file is.
 */
function sniffIsoMedia(head: Buffer): string | undefined {
  const brands = readFtypBrands(head);
  if (!brands) return undefined;
  const { major, all } = brands;
  const hasAny = (candidates: readonly string[]) => candidates.some((brand) => all.has(brand));
  // An AVIF lists mif1 too, so the specific image brands are looked at before the generic ones.
  if (hasAny(['avif', 'avis'])) return 'image/avif';
  if (hasAny(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis'])) return 'image/heic';
  if (hasAny(['mif1', 'msf1'])) return 'image/heic';
  if (major === 'qt  ') return 'video/quicktime';
  // Only the major brand for audio: iTunes videos (M4V) list M4A among their compatible brands.
  if (['M4A ', 'M4B ', 'M4P '].includes(major)) return 'audio/mp4';
  if (hasAny(['isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'mp41', 'mp42', 'avc1', 'dash', 'M4V ', 'mmp4', 'f4v '])) {
    return 'video/mp4';
  }
  return undefined;
}

const FTYP_HEADER_BYTES = 16; // size, "ftyp", major brand, minor version
/** Far more than any real file lists; a larger claimed size is not an ftyp box we trust. */
const FTYP_MAX_BYTES = 1024;

function readFtypBrands(head: Buffer): { major: string; all: ReadonlySet<string> } | undefined {
  if (head.length < FTYP_HEADER_BYTES || !hasBytes(head, 4, 'ftyp')) return undefined;
  const boxSize = head.readUInt32BE(0);
  if (boxSize < FTYP_HEADER_BYTES || boxSize > FTYP_MAX_BYTES || boxSize % 4 !== 0) return undefined;
  const major = head.toString('latin1', 8, 12);
  const all = new Set([major]);
  // Brands past the end of the buffer are unknown, not absent: read what is there.
  const end = Math.min(boxSize, head.length);
  for (let offset = FTYP_HEADER_BYTES; offset + 4 <= end; offset += 4) {
    all.add(head.toString('latin1', offset, offset + 4));
  }
  return { major, all };
}

/** Elements that make a browser treat a document as HTML (WHATWG MIME sniffing, "HTML" patterns). */
const HTML_ELEMENTS: ReadonlySet<string> = new Set([
  'html',
  'head',
  'body',
  'script',
  'iframe',
  'style',
  'title',
  'table',
  'div',
  'font',
  'h1',
  'a',
  'b',
  'br',
  'p',
]);

/**
 * SVG, HTML or other XML: the first element after an optional byte-order mark, whitespace, XML
 * declaration, comments, processing instructions and doctype. Named so a refusal can say what
 * was sent; none of them is ever an image here.
 */
function sniffMarkup(head: Buffer): string | undefined {
  const text = decodeText(head).toLowerCase();
  let position = skipWhitespace(text, 0);
  let sawXmlDeclaration = false;
  for (;;) {
    if (text.startsWith('<?', position)) {
      sawXmlDeclaration ||= text.startsWith('<?xml', position);
      position = skipPast(text, position, '?>');
    } else if (text.startsWith('<!--', position)) {
      position = skipPast(text, position, '-->');
    } else if (text.startsWith('<!doctype', position)) {
      if (/^<!doctype\s+html[\s>]/.test(text.slice(position, position + 15))) return 'text/html';
      position = skipDoctype(text, position);
    } else {
      break;
    }
    if (position < 0) return sawXmlDeclaration ? 'application/xml' : undefined;
    position = skipWhitespace(text, position);
  }
  const element = /^<([a-z][a-z0-9]*)[\s/>]/.exec(text.slice(position, position + 16))?.[1];
  if (element === 'svg') return 'image/svg+xml';
  if (element !== undefined && HTML_ELEMENTS.has(element)) return 'text/html';
  return sawXmlDeclaration ? 'application/xml' : undefined;
}

/** Latin1 keeps one character per byte for ASCII markup; UTF-16 (with its BOM) is decoded as such. */
function decodeText(head: Buffer): string {
  if (hasBytes(head, 0, [0xef, 0xbb, 0xbf])) return head.toString('latin1', 3);
  if (hasBytes(head, 0, [0xff, 0xfe])) return head.toString('utf16le', 2);
  if (hasBytes(head, 0, [0xfe, 0xff])) {
    const evenLength = head.subarray(2, head.length - (head.length % 2));
    return Buffer.from(evenLength).swap16().toString('utf16le');
  }
  return head.toString('latin1');
}

function skipWhitespace(text: string, position: number): number {
  while (position < text.length && ' \t\r\n\f'.includes(text[position])) position++;
  return position;
}

/** The position after `terminator`, or -1 when the buffer ends first. */
function skipPast(text: string, position: number, terminator: string): number {
  const found = text.indexOf(terminator, position);
  return found < 0 ? -1 : found + terminator.length;
}

/** A doctype may hold an internal subset in brackets, whose declarations contain '>'. */
function skipDoctype(text: string, position: number): number {
  const close = text.indexOf('>', position);
  const subsetStart = text.indexOf('[', position);
  if (subsetStart < 0 || (close >= 0 && close < subsetStart)) return close < 0 ? -1 : close + 1;
  const subsetEnd = text.indexOf(']', subsetStart);
  return subsetEnd < 0 ? -1 : skipPast(text, subsetEnd, '>');
}
