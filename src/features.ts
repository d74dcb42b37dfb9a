import { accessFeature } from './access/access.feature';
import { accountsFeature } from './accounts/accounts.feature';
import { auditFeature } from './audit/audit.feature';
import { backupFeature } from './backup/backup.feature';
import { consoleFeature } from './console/console.feature';
import type { Config } from './config';
import { cryptoFeature } from './crypto/crypto.feature';
import type { Feature } from './feature';
import { fileFieldsFeatures, filesFeature } from './files/files.feature';
import { firewallFeature } from './firewall/firewall.feature';
import { mailFeature } from './mail/mail.feature';
import { mfaFeature } from './mfa/mfa.feature';
import { modelsFeature, modelsFeatureFor } from './models';
import { realtimeFeature } from './realtime/realtime.feature';
import { selfAuditFeature } from './self-audit/self-audit.feature';
import { systemFeature } from './system/system.feature';

// The GraphQL of every model's file fields (generated once: type-graphql's metadata is global), and of the served ones.
const fileFieldsServing = fileFieldsFeatures(modelsFeature.dataModels ?? []);
const fileFieldsFeature = fileFieldsServing(modelsFeature.dataModels ?? []);

/**
 * Every feature Bastion runs, each a folder of its own. The order is the order of each request's
 * context (accounts finds the viewer before access decides for it), of HTTP gates, Apollo plugins
 * and settings; services are built on first use, so it does not constrain them. This list serves
 * the sample models (the development configuration, which schema/schema.graphql shows); a process
 * runs `featuresFor(config)`.
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
  realtimeFeature,
  filesFeature,
  fileFieldsFeature,
  backupFeature,
  selfAuditFeature,
  consoleFeature,
];

/** The features a process with this configuration runs: without the sample models unless BASTION_SAMPLE_MODELS is on. */
export function featuresFor(config: Pick<Config, 'sampleModels'>): readonly Feature[] {
  const models = modelsFeatureFor(config);
  const fileFields = fileFieldsServing(models.dataModels ?? []);
  return FEATURES.map((feature) => (feature === modelsFeature ? models : feature === fileFieldsFeature ? fileFields : feature));
}
