import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit chain becomes keyed: each event records the data key id whose chain key made its hash.
 * Existing events keep a null key id until the audit feature re-chains them under the current key
 * at the next start (it needs the keyring, which a migration does not have), with a checkpoint event.
 */
export class AuditChainKey1796540710795 implements MigrationInterface {
  name = 'AuditChainKey1796540710795';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "audit_events" ADD "key_id" text`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "audit_events" DROP COLUMN "key_id"`);
  }
}
