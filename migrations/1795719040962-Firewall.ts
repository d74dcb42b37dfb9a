import { MigrationInterface, QueryRunner } from 'typeorm';

export class Firewall1795719040962 implements MigrationInterface {
  name = 'Firewall1795719040962';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "firewall_rules" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "cidr" text NOT NULL, "action" text NOT NULL, "note" text, "expires_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "created_by" uuid, CONSTRAINT "firewall_rules_action" CHECK ("action" IN ('allow', 'deny')), CONSTRAINT "PK_a9f73739a6c4718b91d15631673" PRIMARY KEY ("id"))`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "firewall_rules"`);
  }
}
