import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Files: encrypted contents in chunks, the files attached to rows, their variants, uploads in
 * progress, and the queue of contents to delete from an object store.
 *
 * Deletion is done by the database, so no path leaves content behind (the data API, a cascade
 * from a deleted account, an operator's SQL): deleting a model's row deletes its files and uploads
 * (`bastion_delete_row_files`, a statement-level trigger each model with files needs: README
 * "Files"); deleting a file or a variant deletes its content, deleting an upload its content when
 * no file took it (`bastion_delete_file_contents`); deleting a content deletes its chunks
 * (cascade) or, for another store, queues them (`bastion_queue_content_deletions`). Chunks are
 * ciphertext: their column skips TOAST compression (it would only cost time).
 */
export class Files1797000000000 implements MigrationInterface {
  name = 'Files1797000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "file_contents" ("id" uuid NOT NULL, "store" text NOT NULL, "kid" text NOT NULL, "salt" bytea NOT NULL, "nonce_prefix" bytea NOT NULL, "chunk_bytes" integer NOT NULL, "byte_size" bigint NOT NULL, "sha256" text, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_afd31793055af9c39c6489d5267" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE TABLE "file_chunks" ("content_id" uuid NOT NULL, "chunk_index" integer NOT NULL, "data" bytea NOT NULL, CONSTRAINT "PK_b13f77bb9ee4ba1dd731328582c" PRIMARY KEY ("content_id", "chunk_index"))`);
    await queryRunner.query(`CREATE TABLE "file_deletions" ("content_id" uuid NOT NULL, "store" text NOT NULL, "chunk_count" integer NOT NULL, "queued_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_f66d7b2e86e9bef18e1b3ffcf91" PRIMARY KEY ("content_id"))`);
    await queryRunner.query(`CREATE TABLE "files" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "table_name" text NOT NULL, "row_id" uuid NOT NULL, "field" text NOT NULL, "content_id" uuid NOT NULL, "uploaded_by" uuid NOT NULL, "content_type" text NOT NULL, "byte_size" bigint NOT NULL, "sha256" text NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_6c16b9093a142e0e7613b04a3d9" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_63c92c51cd7fd95c2d79d709b6" ON "files"  ("uploaded_by") `);
    await queryRunner.query(`CREATE INDEX "IDX_7efdf9f525c2b2027a39a5f5df" ON "files"  ("table_name", "row_id", "field") `);
    await queryRunner.query(`CREATE INDEX "IDX_5de96b2ae80d6c2de3b388f827" ON "files"  ("content_id") `);
    await queryRunner.query(`CREATE TABLE "file_variants" ("file_id" uuid NOT NULL, "variant" text NOT NULL, "content_id" uuid NOT NULL, "content_type" text NOT NULL, "byte_size" bigint NOT NULL, "sha256" text NOT NULL, CONSTRAINT "PK_0c161d5c0c0cbc6a3891998ff01" PRIMARY KEY ("file_id", "variant"))`);
    await queryRunner.query(`CREATE INDEX "IDX_191fb13a7eead6628abdde6587" ON "file_variants"  ("content_id") `);
    await queryRunner.query(`CREATE TABLE "uploads" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "table_name" text NOT NULL, "row_id" uuid NOT NULL, "field" text NOT NULL, "user_id" uuid NOT NULL, "byte_size" bigint NOT NULL, "declared_type" text NOT NULL, "content_id" uuid NOT NULL, "received_bytes" bigint NOT NULL DEFAULT '0', "tail" text, "created_by_client_at" TIMESTAMP WITH TIME ZONE, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_d1781d1eedd7459314f60f39bd3" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_0155aad3e213584b446bf14a85" ON "uploads"  ("user_id") `);
    await queryRunner.query(`CREATE INDEX "IDX_a6df6dd01709506c9a21c318f2" ON "uploads"  ("expires_at") `);
    await queryRunner.query(`ALTER TABLE "file_chunks" ADD CONSTRAINT "FK_ce194b45ff051b1643720c46ce6" FOREIGN KEY ("content_id") REFERENCES "file_contents"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "files" ADD CONSTRAINT "FK_5de96b2ae80d6c2de3b388f8278" FOREIGN KEY ("content_id") REFERENCES "file_contents"("id") ON DELETE NO ACTION ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "files" ADD CONSTRAINT "FK_63c92c51cd7fd95c2d79d709b61" FOREIGN KEY ("uploaded_by") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "file_variants" ADD CONSTRAINT "FK_b596613079738f37c06d4c9f158" FOREIGN KEY ("file_id") REFERENCES "files"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "file_variants" ADD CONSTRAINT "FK_191fb13a7eead6628abdde6587f" FOREIGN KEY ("content_id") REFERENCES "file_contents"("id") ON DELETE NO ACTION ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "uploads" ADD CONSTRAINT "FK_0155aad3e213584b446bf14a85b" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "file_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL`);
    await queryRunner.query(`
      CREATE FUNCTION bastion_delete_row_files() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
      BEGIN
        DELETE FROM files f USING old_rows o WHERE f.table_name = TG_TABLE_NAME AND f.row_id = o.id;
        DELETE FROM uploads u USING old_rows o WHERE u.table_name = TG_TABLE_NAME AND u.row_id = o.id;
        RETURN NULL;
      END $$`);
    await queryRunner.query(`
      CREATE FUNCTION bastion_delete_file_contents() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
      BEGIN
        DELETE FROM file_contents c USING old_rows o
         WHERE c.id = o.content_id
           AND NOT EXISTS (SELECT 1 FROM files f WHERE f.content_id = c.id)
           AND NOT EXISTS (SELECT 1 FROM file_variants v WHERE v.content_id = c.id);
        RETURN NULL;
      END $$`);
    await queryRunner.query(`
      CREATE FUNCTION bastion_queue_content_deletions() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
      BEGIN
        INSERT INTO file_deletions (content_id, store, chunk_count)
        SELECT o.id, o.store, greatest(1, ceil(o.byte_size::numeric / o.chunk_bytes))::integer FROM old_rows o WHERE o.store <> 'postgres'
        ON CONFLICT (content_id) DO NOTHING;
        RETURN NULL;
      END $$`);
    for (const table of ['files', 'file_variants', 'uploads'])
      await queryRunner.query(
        `CREATE TRIGGER bastion_delete_file_contents AFTER DELETE ON "${table}" REFERENCING OLD TABLE AS old_rows ` +
          'FOR EACH STATEMENT EXECUTE FUNCTION bastion_delete_file_contents()',
      );
    await queryRunner.query(
      'CREATE TRIGGER bastion_queue_content_deletions AFTER DELETE ON "file_contents" REFERENCING OLD TABLE AS old_rows ' +
        'FOR EACH STATEMENT EXECUTE FUNCTION bastion_queue_content_deletions()',
    );
    // The sample models with files (Profile.avatar, Post.attachments).
    for (const table of ['profiles', 'posts'])
      await queryRunner.query(
        `CREATE TRIGGER bastion_delete_row_files AFTER DELETE ON "${table}" REFERENCING OLD TABLE AS old_rows ` +
          'FOR EACH STATEMENT EXECUTE FUNCTION bastion_delete_row_files()',
      );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['profiles', 'posts']) await queryRunner.query(`DROP TRIGGER bastion_delete_row_files ON "${table}"`);
    for (const table of ['files', 'file_variants', 'uploads']) await queryRunner.query(`DROP TRIGGER bastion_delete_file_contents ON "${table}"`);
    await queryRunner.query('DROP TRIGGER bastion_queue_content_deletions ON "file_contents"');
    await queryRunner.query('DROP FUNCTION bastion_delete_row_files(), bastion_delete_file_contents(), bastion_queue_content_deletions()');
    await queryRunner.query(`ALTER TABLE "uploads" DROP CONSTRAINT "FK_0155aad3e213584b446bf14a85b"`);
    await queryRunner.query(`ALTER TABLE "file_variants" DROP CONSTRAINT "FK_191fb13a7eead6628abdde6587f"`);
    await queryRunner.query(`ALTER TABLE "file_variants" DROP CONSTRAINT "FK_b596613079738f37c06d4c9f158"`);
    await queryRunner.query(`ALTER TABLE "files" DROP CONSTRAINT "FK_63c92c51cd7fd95c2d79d709b61"`);
    await queryRunner.query(`ALTER TABLE "files" DROP CONSTRAINT "FK_5de96b2ae80d6c2de3b388f8278"`);
    await queryRunner.query(`ALTER TABLE "file_chunks" DROP CONSTRAINT "FK_ce194b45ff051b1643720c46ce6"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_a6df6dd01709506c9a21c318f2"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_0155aad3e213584b446bf14a85"`);
    await queryRunner.query(`DROP TABLE "uploads"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_191fb13a7eead6628abdde6587"`);
    await queryRunner.query(`DROP TABLE "file_variants"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_7efdf9f525c2b2027a39a5f5df"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_63c92c51cd7fd95c2d79d709b6"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_5de96b2ae80d6c2de3b388f827"`);
    await queryRunner.query(`DROP TABLE "files"`);
    await queryRunner.query(`DROP TABLE "file_deletions"`);
    await queryRunner.query(`DROP TABLE "file_chunks"`);
    await queryRunner.query(`DROP TABLE "file_contents"`);
  }
}
