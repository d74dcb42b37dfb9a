import { accessFeature } from './access/access.feature';
import { accountsFeature } from './accounts/accounts.feature';
import { auditFeature } from './audit/audit.feature';
import { backupFeature } from './backup/backup.feature';
import { cryptoFeature } from './crypto/crypto.feature';
import type { Feature } from './feature';
import { firewallFeature } from './firewall/firewall.feature';
import { mailFeature } from './mail/mail.feature';
import { mfaFeature } from './mfa/mfa.feature';
import { modelsFeature } from './models';
import { selfAuditFeature } from './self-audit/self-audit.feature';
import { systemFeature } from './system/system.feature';

/**
 * Every feature Bastion runs, each a folder of its own. The order is the order of each request's
 * context (accounts finds the viewer before access decides for it), of HTTP gates, Apollo plugins
 * and settings; services are built on first use, so it does not constrain them.
 */
export const FEATURES: readonly Feature[] = [
  systemFeature,
  auditFeature,
  cryptoFeature,
  mailFeature,
  accountsFeature,
  mfaFeature,
  accessFeature,
  firewallFeature,
  modelsFeature,
  backupFeature,
  selfAuditFeature,
];
