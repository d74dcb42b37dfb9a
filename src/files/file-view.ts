import { Field, ID, Int, ObjectType } from 'type-graphql';
import type { StoredFile } from './stored-file.entity';

/** A file as the API shows it: only ever built for a file field the viewer may read, of a row it may read. */
@ObjectType('File', { description: 'A file attached to a field of a row. You see it when you may read that field of that row.' })
export class FileView {
  constructor(
    readonly file: StoredFile,
    /** The variants it has (THUMB_256…), ORIGINAL aside. */
    readonly variants: ReadonlySet<string>,
    /** The origin its URLs start with. */
    readonly baseUrl: string,
  ) {}

  @Field(() => ID, { description: 'Stable identifier (removeFile takes it).' })
  get id(): string {
    return this.file.id;
  }

  @Field({ description: 'The type read from its bytes when it arrived (never the one the app claimed).' })
  get contentType(): string {
    return this.file.contentType;
  }

  @Field(() => Int, { description: 'Its size in bytes.' })
  get byteSize(): number {
    return this.file.byteSize;
  }

  @Field({ description: 'SHA-256 of its stored bytes, hex: the ETag its URL answers with.' })
  get sha256(): string {
    return this.file.sha256;
  }

  @Field({ description: 'When it was attached.' })
  get createdAt(): Date {
    return this.file.createdAt;
  }
}
