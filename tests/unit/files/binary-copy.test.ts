import { firstBinaryCopyField } from '../../../src/files/postgres-chunk-store';

/** A binary COPY as PostgreSQL writes it: signature, flags, header extension, rows, trailer. */
function copyOf(rows: readonly Buffer[], extension = Buffer.alloc(0)): Buffer {
  const header = Buffer.concat([
    Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
    Buffer.alloc(4),
    Buffer.from([0, 0, 0, extension.length]),
    extension,
  ]);
  const tuples = rows.map((row) => {
    const prefix = Buffer.alloc(6);
    prefix.writeInt16BE(1, 0);
    prefix.writeInt32BE(row.length, 2);
    return Buffer.concat([prefix, row]);
  });
  return Buffer.concat([header, ...tuples, Buffer.from([0xff, 0xff])]);
}

describe('firstBinaryCopyField', () => {
  it("reads a row's bytes as they are, past a header extension", () => {
    const data = Buffer.from([0, 1, 2, 0xff, 0x5c, 0x78]);
    expect(firstBinaryCopyField(copyOf([data]))).toEqual(data);
    expect(firstBinaryCopyField(copyOf([data], Buffer.from('ext!')))).toEqual(data);
  });

  it('gives undefined for no row, and refuses what is not a binary COPY or is cut short', () => {
    expect(firstBinaryCopyField(copyOf([]))).toBeUndefined();
    expect(() => firstBinaryCopyField(Buffer.from('\\x0102'))).toThrow('not a binary COPY');
    const cut = copyOf([Buffer.alloc(100)]);
    expect(() => firstBinaryCopyField(cut.subarray(0, cut.length - 20))).toThrow('a damaged binary COPY');
  });
});
