import { MigrationInterface, QueryRunner } from 'typeorm';

export class Backups1795724529338 implements MigrationInterface {
  name = 'Backups1795724529338';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "backups" ("id" uuid NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL, "size_bytes" bigint NOT NULL DEFAULT '0', "tables" integer NOT NULL DEFAULT '0', "rows" bigint NOT NULL DEFAULT '0', "schema_version" text NOT NULL, "status" text NOT NULL, "verified_at" TIMESTAMP(3) WITH TIME ZONE, "verification" text, "error" text, "key_id" text NOT NULL, "file_name" text NOT NULL, "host" text NOT NULL, "sha256" text, "copy_path" text, "copy_error" text, "trigger" text NOT NULL, "completed_at" TIMESTAMP(3) WITH TIME ZONE, "manifest" jsonb, CONSTRAINT "backups_status" CHECK ("status" IN ('creating', 'complete', 'failed', 'verified', 'verify_failed')), CONSTRAINT "PK_ca30ff369eddfc7dac3b35d0d3c" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_93af15b069c3b36d13689b795f" ON "backups"  ("created_at") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_93af15b069c3b36d13689b795f"`);
    await queryRunner.query(`DROP TABLE "backups"`);
  }
}
