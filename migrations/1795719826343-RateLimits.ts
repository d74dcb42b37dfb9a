import { MigrationInterface, QueryRunner } from 'typeorm';

export class RateLimits1795719826343 implements MigrationInterface {
  name = 'RateLimits1795719826343';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // UNLOGGED: counters written on every request need no WAL; a crash loses at most a window of counts.
    await queryRunner.query(`CREATE UNLOGGED TABLE "rate_limits" ("key" character varying(255) NOT NULL, "points" integer NOT NULL DEFAULT '0', "expire" bigint, CONSTRAINT "PK_8cb6aa4831e3e775ccf370521db" PRIMARY KEY ("key"))`);
    await queryRunner.query(`CREATE INDEX "IDX_rate_limits_expire" ON "rate_limits" ("expire") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_rate_limits_expire"`);
    await queryRunner.query(`DROP TABLE "rate_limits"`);
  }
}
