import { MigrationInterface, QueryRunner } from 'typeorm';

export class Mfa1795714061315 implements MigrationInterface {
  name = 'Mfa1795714061315';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "mfa_challenges" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "token_hash" text NOT NULL, "failed_attempts" integer NOT NULL DEFAULT '0', "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "ended_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_25d85a6da62620267e003fb4da4" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_1715663f6483821e6af6132b35" ON "mfa_challenges"  ("user_id") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_cf5f2cdf8d418c02661b06a931" ON "mfa_challenges"  ("token_hash") `);
    await queryRunner.query(`CREATE TABLE "mfa_factors" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "secret" text NOT NULL, "status" text NOT NULL, "last_used_step" bigint, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "verified_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_2a242f78dd4fed11bd563d4f933" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE UNIQUE INDEX "mfa_factors_one_verified_per_user" ON "mfa_factors"  ("user_id") WHERE status = 'verified'`);
    await queryRunner.query(`CREATE INDEX "IDX_da15542afc11152bbd86231ec1" ON "mfa_factors"  ("user_id", "status") `);
    await queryRunner.query(`CREATE TABLE "recovery_codes" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "lookup" text NOT NULL, "code_hash" text NOT NULL, "used_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_0723b9e53961e799027d7f7ba32" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_25c7bd39d74abc1797c1d4c694" ON "recovery_codes"  ("user_id", "lookup") `);
    await queryRunner.query(`ALTER TABLE "mfa_challenges" ADD CONSTRAINT "FK_1715663f6483821e6af6132b35b" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "mfa_factors" ADD CONSTRAINT "FK_120abae8e4a6232bfe2c75b59d2" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    await queryRunner.query(`ALTER TABLE "recovery_codes" ADD CONSTRAINT "FK_fb82b2ac740ca095b617afad031" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "recovery_codes" DROP CONSTRAINT "FK_fb82b2ac740ca095b617afad031"`);
    await queryRunner.query(`ALTER TABLE "mfa_factors" DROP CONSTRAINT "FK_120abae8e4a6232bfe2c75b59d2"`);
    await queryRunner.query(`ALTER TABLE "mfa_challenges" DROP CONSTRAINT "FK_1715663f6483821e6af6132b35b"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_25c7bd39d74abc1797c1d4c694"`);
    await queryRunner.query(`DROP TABLE "recovery_codes"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_da15542afc11152bbd86231ec1"`);
    await queryRunner.query(`DROP INDEX "public"."mfa_factors_one_verified_per_user"`);
    await queryRunner.query(`DROP TABLE "mfa_factors"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_cf5f2cdf8d418c02661b06a931"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_1715663f6483821e6af6132b35"`);
    await queryRunner.query(`DROP TABLE "mfa_challenges"`);
  }
}
