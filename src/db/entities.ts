import { EncryptionKeyRecord } from '../crypto/encryption-key.entity';

/**
 * Every TypeORM entity, listed explicitly (a glob would differ between ts sources in tests
 * and compiled js). Each feature adds its entities here.
 */
export const ENTITIES: Function[] = [EncryptionKeyRecord];
