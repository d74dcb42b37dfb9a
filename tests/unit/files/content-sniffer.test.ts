import fc from 'fast-check';
import sharp, { type Sharp } from 'sharp';
import { gzipSync } from 'node:zlib';
import { SNIFF_BYTES, sniffContentType } from '../../../src/files/content-sniffer';

/** Bytes from a mix of latin1 strings (one byte per character) and byte values. */
const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));

const uint32 = (value: number) => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return [...buffer];
};

/** An ISO-BMFF ftyp box followed by the start of the next box, as real files have. */
const ftyp = (major: string, ...compatible: string[]) =>
  bytes(uint32(16 + 4 * compatible.length), 'ftyp', major, [0, 0, 0, 0], compatible.join(''), uint32(8), 'free');

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/heic'];

describe('sniffContentType: what the leading bytes prove', () => {
  const cases: [string, string, Buffer][] = [
    ['JPEG/JFIF', 'image/jpeg', bytes([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10], 'JFIF\0')],
    ['JPEG/EXIF', 'image/jpeg', bytes([0xff, 0xd8, 0xff, 0xe1, 0x12, 0x34], 'Exif\0\0')],
    ['PNG', 'image/png', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13], 'IHDR')],
    ['GIF87a', 'image/gif', bytes('GIF87a', [1, 0, 1, 0, 0])],
    ['GIF89a', 'image/gif', bytes('GIF89a', [1, 0, 1, 0, 0])],
    ['WebP', 'image/webp', bytes('RIFF', [0x24, 0, 0, 0], 'WEBPVP8 ')],
    ['AVIF (major avif)', 'image/avif', ftyp('avif', 'mif1', 'avif', 'miaf')],
    ['AVIF (major mif1, avif compatible)', 'image/avif', ftyp('mif1', 'mif1', 'avif')],
    ['AVIF sequence', 'image/avif', ftyp('avis', 'msf1', 'avis')],
    ['HEIC (iPhone)', 'image/heic', ftyp('heic', 'mif1', 'heic')],
    ['HEIC (heix)', 'image/heic', ftyp('heix', 'mif1', 'heix')],
    ['HEIC sequence (hevc)', 'image/heic', ftyp('msf1', 'msf1', 'hevc')],
    ['HEIF (mif1 alone)', 'image/heic', ftyp('mif1', 'mif1', 'miaf')],
    ['PDF', 'application/pdf', bytes('%PDF-1.7\n%\xe2\xe3')],
    ['MP4 (isom)', 'video/mp4', ftyp('isom', 'isom', 'iso2', 'avc1', 'mp41')],
    ['MP4 (mp42)', 'video/mp4', ftyp('mp42', 'mp42', 'isom')],
    ['MP4 (DASH)', 'video/mp4', ftyp('dash', 'iso6', 'mp41')],
    ['M4V, which lists M4A among its brands', 'video/mp4', ftyp('M4V ', 'M4V ', 'M4A ', 'mp42', 'isom')],
    ['QuickTime', 'video/quicktime', ftyp('qt  ', 'qt  ')],
    ['M4A', 'audio/mp4', ftyp('M4A ', 'M4A ', 'mp42', 'isom')],
    ['M4B', 'audio/mp4', ftyp('M4B ', 'M4B ', 'mp42')],
    ['MP3 with an ID3v2.4 tag', 'audio/mpeg', bytes('ID3', [4, 0, 0, 0, 0, 0x02, 0x01])],
    ['MP3 frame (MPEG-1 layer III, 128 kbit/s, 44.1 kHz)', 'audio/mpeg', bytes([0xff, 0xfb, 0x90, 0x64])],
    ['MP3 frame (MPEG-2 layer III)', 'audio/mpeg', bytes([0xff, 0xf3, 0x84, 0xc4])],
    ['Ogg', 'audio/ogg', bytes('OggS', [0, 2, 0, 0])],
    ['WAV', 'audio/wav', bytes('RIFF', [0x24, 0x08, 0, 0], 'WAVEfmt ')],
    ['AAC ADTS without CRC', 'audio/aac', bytes([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc])],
    ['AAC ADTS MPEG-2', 'audio/aac', bytes([0xff, 0xf9, 0x50, 0x80, 0x02, 0x1f, 0xfc])],
    ['ZIP', 'application/zip', bytes('PK', [3, 4, 20, 0, 0, 0, 8, 0])],
    ['empty ZIP', 'application/zip', bytes('PK', [5, 6], Array<number>(18).fill(0))],
    ['gzip', 'application/gzip', gzipSync('hello')],
    ['SVG', 'image/svg+xml', bytes('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')],
    [
      'SVG with BOM, XML declaration, comment and a doctype with an internal subset',
      'image/svg+xml',
      bytes(
        [0xef, 0xbb, 0xbf],
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Generator: Adobe Illustrator -->\n',
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n',
        '  <!ENTITY ns_svg "http://www.w3.org/2000/svg">\n]>\n',
        '<SVG version="1.1" xmlns="&ns_svg;"><script>alert(1)</script></SVG>',
      ),
    ],
    [
      'SVG in UTF-16LE',
      'image/svg+xml',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<svg xmlns="http://www.w3.org/2000/svg">', 'utf16le')]),
    ],
    [
      'SVG in UTF-16LE, indented: its byte-order mark and a space also read as an MPEG frame header',
      'image/svg+xml',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' \n<svg xmlns="http://www.w3.org/2000/svg">', 'utf16le')]),
    ],
    ['HTML doctype', 'text/html', bytes('<!DOCTYPE html>\n<html><body>hi</body></html>')],
    ['HTML element, upper case, after whitespace', 'text/html', bytes('\r\n  <HTML lang="en">')],
    ['HTML head', 'text/html', bytes('<head><title>x</title></head>')],
    ['HTML body', 'text/html', bytes('<body onload="steal()">')],
    ['HTML script', 'text/html', bytes('<script>alert(document.cookie)</script>')],
    ['HTML after a comment', 'text/html', bytes('<!-- saved page --><html>')],
    ['XHTML', 'text/html', bytes('<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">')],
    ['XML', 'application/xml', bytes('<?xml version="1.0"?>\n<note><to>Tove</to></note>')],
    ['XML cut off inside a comment', 'application/xml', bytes('<?xml version="1.0"?><!-- a long comment')],
  ];

  it.each(cases)('%s → %s', (_label, mime, head) => {
    expect(sniffContentType(head)).toEqual({ mime, image: IMAGE_TYPES.includes(mime) });
  });

  it('marks exactly jpeg, png, gif, webp, avif and heic as images', () => {
    const images = new Set(cases.filter(([, , head]) => sniffContentType(head)?.image).map(([, mime]) => mime));
    expect([...images].sort()).toEqual([...IMAGE_TYPES].sort());
  });

  it('never calls markup an image, whatever it claims to be', () => {
    for (const markup of ['<svg/>', '<?xml version="1.0"?><svg/>', '<html>', '<!doctype html>']) {
      expect(sniffContentType(Buffer.from(markup))?.image).toBe(false);
    }
  });

  const sharpEncoders: [string, (pipeline: Sharp) => Sharp][] = [
    ['image/jpeg', (pipeline) => pipeline.jpeg()],
    ['image/png', (pipeline) => pipeline.png()],
    ['image/gif', (pipeline) => pipeline.gif()],
    ['image/webp', (pipeline) => pipeline.webp()],
    ['image/avif', (pipeline) => pipeline.avif()],
  ];

  it.each(sharpEncoders)("recognizes sharp's own %s output", async (mime, encode) => {
    const data = await encode(sharp({ create: { width: 8, height: 8, channels: 3, background: '#336699' } })).toBuffer();
    expect(sniffContentType(data.subarray(0, SNIFF_BYTES))).toEqual({ mime, image: true });
  });
});

describe('sniffContentType: what proves nothing', () => {
  it('returns undefined for an empty buffer', () => {
    expect(sniffContentType(Buffer.alloc(0))).toBeUndefined();
  });

  const shortOrWrong: [string, Buffer][] = [
    ['one JPEG byte', bytes([0xff])],
    ['two JPEG bytes', bytes([0xff, 0xd8])],
    ['seven of the eight PNG signature bytes', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a])],
    ['a PNG signature with one wrong byte', bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0b])],
    ['GIF89 without its letter', bytes('GIF89')],
    ['GIF88a', bytes('GIF88a', [1, 0, 1, 0])],
    ['RIFF cut before the form type', bytes('RIFF', [0x24, 0, 0, 0], 'WEB')],
    ['RIFF with another form type', bytes('RIFF', [0x24, 0, 0, 0], 'AVI LIST')],
    ['%PDF without the dash', bytes('%PDF')],
    ['PK without a record type', bytes('PK', [1, 2])],
    ['gzip magic with an undefined method', bytes([0x1f, 0x8b, 0x07, 0x00])],
    ['an ftyp box cut inside its header', ftyp('avif', 'mif1').subarray(0, 15)],
    ['an ftyp box claiming 8 bytes', bytes(uint32(8), 'ftypavif', [0, 0, 0, 0])],
    ['an ftyp box claiming a size not a multiple of 4', bytes(uint32(18), 'ftypavif', [0, 0, 0, 0], 'mi')],
    ['an ftyp box with unknown brands', ftyp('abcd', 'abcd', 'wxyz')],
    ['ID3 with an impossible version', bytes('ID3', [9, 0, 0, 0, 0, 0x02, 0x01])],
    ['ID3 with a size byte over 0x7f', bytes('ID3', [3, 0, 0, 0x80, 0, 0, 0])],
    ['ID3 cut short', bytes('ID3', [3, 0])],
    ['sync bits with the reserved MPEG layer 00', bytes([0xff, 0xe1, 0x90, 0x64])],
    ['sync bits with a bad bitrate', bytes([0xff, 0xff, 0xff, 0xff])],
    ['an MPEG frame header cut to 3 bytes', bytes([0xff, 0xfb, 0x90])],
    ['plain text', bytes('hello, world')],
    ['text that merely mentions <svg', bytes('see the <svg> element')],
    ['an element we do not know', bytes('<foo><svg/></foo>')],
    ['an unterminated doctype', bytes('<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" [ <!ENTITY x "y">')],
    ['a tag name that only starts like html', bytes('<htmlx>')],
  ];

  it.each(shortOrWrong)('%s → undefined', (_label, head) => {
    expect(sniffContentType(head)).toBeUndefined();
  });

  it('looks no further than SNIFF_BYTES', () => {
    const late = Buffer.concat([Buffer.alloc(SNIFF_BYTES, ' '), Buffer.from('<svg/>')]);
    expect(sniffContentType(late)).toBeUndefined();
    expect(sniffContentType(late.subarray(SNIFF_BYTES))).toEqual({ mime: 'image/svg+xml', image: false });
  });

  it('never throws and never reads past the buffer, for any bytes', () => {
    const interesting = fc.constantFrom(
      bytes([0xff, 0xd8, 0xff]),
      bytes('RIFF'),
      bytes(uint32(24), 'ftyp'),
      bytes(uint32(1024), 'ftypmif1'),
      bytes('ID3'),
      bytes([0xff, 0xf1]),
      bytes('<?xml'),
      bytes('<!doctype svg ['),
      bytes([0xfe, 0xff, 0x00]),
    );
    fc.assert(
      fc.property(interesting, fc.uint8Array({ maxLength: 48 }), (prefix, tail) => {
        const head = Buffer.concat([prefix, tail]);
        for (let length = 0; length <= head.length; length++) {
          const sniffed = sniffContentType(head.subarray(0, length));
          if (sniffed?.image) expect(IMAGE_TYPES).toContain(sniffed.mime);
        }
      }),
    );
  });
});
