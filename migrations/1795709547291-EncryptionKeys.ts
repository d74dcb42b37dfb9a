import { MigrationInterface, QueryRunner } from 'typeorm';

export class EncryptionKeys1795709547291 implements MigrationInterface {
  name = 'EncryptionKeys1795709547291';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "encryption_keys" ("kid" text NOT NULL, "first_used_at" TIMESTAMP WITH TIME ZONE NOT NULL, "retired_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_5066ac838f8a955da0fcaa7fdcb" PRIMARY KEY ("kid"))`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "encryption_keys"`);
  }
}
