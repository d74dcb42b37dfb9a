import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { bigintAsNumber } from '../db/bigint-column';
import { FileContent } from './file-content.entity';
import { StoredFile } from './stored-file.entity';

/** A smaller rendition of an image file (THUMB_256…), made once when the upload completes. */
@Entity('file_variants')
export class FileVariant {
  @PrimaryColumn('uuid')
  fileId!: string;

  @PrimaryColumn('text')
  variant!: string;

  @ManyToOne(() => StoredFile, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'file_id' })
  file?: StoredFile;

  @Index()
  @Column({ type: 'uuid' })
  contentId!: string;

  @ManyToOne(() => FileContent)
  @JoinColumn({ name: 'content_id' })
  content?: FileContent;

  @Column({ type: 'text' })
  contentType!: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  byteSize!: number;

  @Column({ type: 'text' })
  sha256!: string;
}
