import { MigrationInterface, QueryRunner } from 'typeorm';

export class AccessControl1795716977632 implements MigrationInterface {
  name = 'AccessControl1795716977632';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "permission_grants" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "role_name" text NOT NULL, "model" text NOT NULL, "action" text NOT NULL, "scope" text NOT NULL, "fields" text array, "filter" text, "created_by" uuid, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "permission_grants_scope" CHECK ("scope" IN ('own', 'all')), CONSTRAINT "permission_grants_action" CHECK ("action" IN ('read', 'create', 'update', 'delete')), CONSTRAINT "PK_be6ee1d795d0ac9f29a4e27a000" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE INDEX "IDX_9232309173d4913e658b95f0e7" ON "permission_grants"  ("model", "action") `);
    await queryRunner.query(`CREATE TABLE "policy_seeds" ("model" text NOT NULL, "seeded_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_47d6a063a4efd57d41c53374dd3" PRIMARY KEY ("model"))`);
    await queryRunner.query(`ALTER TABLE "permission_grants" ADD CONSTRAINT "FK_6758de625d36ed2bb1ae527cd8d" FOREIGN KEY ("role_name") REFERENCES "roles"("name") ON DELETE CASCADE ON UPDATE NO ACTION`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "permission_grants" DROP CONSTRAINT "FK_6758de625d36ed2bb1ae527cd8d"`);
    await queryRunner.query(`DROP TABLE "policy_seeds"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_9232309173d4913e658b95f0e7"`);
    await queryRunner.query(`DROP TABLE "permission_grants"`);
  }
}
