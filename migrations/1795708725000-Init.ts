import { MigrationInterface, QueryRunner } from 'typeorm';

/** The base every later migration builds on: gen_random_uuid() and digest() come from pgcrypto. */
export class Init1795708725000 implements MigrationInterface {
  name = 'Init1795708725000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE EXTENSION IF NOT EXISTS pgcrypto');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP EXTENSION IF EXISTS pgcrypto');
  }
}
