import { PermissionGrantRow, PolicySeed } from '../access/permission-grant.entity';
import { Role } from '../accounts/role.entity';
import { UserRole } from '../accounts/user-role.entity';
import { AccountToken } from '../accounts/account-token.entity';
import { LoginThrottle } from '../accounts/login-throttle.entity';
import { RefreshToken } from '../accounts/refresh-token.entity';
import { Session } from '../accounts/session.entity';
import { SigningKey } from '../accounts/signing-key.entity';
import { User } from '../accounts/user.entity';
import { AuditEvent } from '../audit/audit-event.entity';
import { Backup } from '../backup/backup.entity';
import { EncryptionKeyRecord } from '../crypto/encryption-key.entity';
import { OutboxMessage } from '../mail/outbox-message.entity';
import { MfaChallengeRecord } from '../mfa/mfa-challenge.entity';
import { MfaFactor } from '../mfa/mfa-factor.entity';
import { RecoveryCode } from '../mfa/recovery-code.entity';
import { FirewallRule } from '../firewall/firewall-rule.entity';
import { RateLimitCounter } from '../firewall/rate-limit.entity';
import { MODEL_ENTITIES } from '../models';

/**
 * Every TypeORM entity, listed explicitly (a glob would differ between ts sources in tests
 * and compiled js). Each feature adds its entities here; the app's models come from src/models.
 */
export const ENTITIES: Function[] = [
  EncryptionKeyRecord,
  User,
  Role,
  UserRole,
  Session,
  RefreshToken,
  AccountToken,
  LoginThrottle,
  SigningKey,
  AuditEvent,
  OutboxMessage,
  MfaFactor,
  MfaChallengeRecord,
  RecoveryCode,
  PermissionGrantRow,
  PolicySeed,
  FirewallRule,
  RateLimitCounter,
  Backup,
  ...MODEL_ENTITIES,
];
