import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { FileContent } from './file-content.entity';

/** One sealed chunk of a content in the PostgreSQL store (ciphertext ‖ tag). */
@Entity('file_chunks')
export class FileChunk {
  @PrimaryColumn('uuid')
  contentId!: string;

  @PrimaryColumn('integer')
  chunkIndex!: number;

  @Column({ type: 'bytea' })
  data!: Buffer;

  @ManyToOne(() => FileContent, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'content_id' })
  content?: FileContent;
}
