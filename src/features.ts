import { AccountsResolver, SessionResolver, UserResolver } from './accounts/accounts.resolver';
import { accountsRules } from './accounts/accounts.rules';
import { AccessResolver } from './access/access.resolver';
import { accessRules } from './access/access.rules';
import type { ModelAccessSpec } from './access/model-access';
import type { RuleTree } from './shield/shield';
import { UserAdminResolver } from './access/user-admin.resolver';
import { AuditReader } from './audit/audit-reader';
import { AuditResolver } from './self-audit/audit-log.resolver';
import { auditRules } from './self-audit/audit-log.rules';
import { BackupResolver } from './backup/backup.resolver';
import { backupRules } from './backup/backup.rules';
import { dataFeature } from './data/data.feature';
import { FirewallResolver } from './firewall/firewall.resolver';
import { firewallRules } from './firewall/firewall.rules';
import { MODELS } from './models';
import { SelfAuditResolver } from './self-audit/self-audit.resolver';
import { selfAuditRules } from './self-audit/self-audit.rules';
import { MfaResolver, UserMfaResolver } from './mfa/mfa.resolver';
import { mfaRules } from './mfa/mfa.rules';
import type { Services } from './services';
import { SystemResolver } from './system/system.resolver';
import { systemRules } from './system/system.rules';
import { SystemService } from './system/system.service';

/** What the composition root hands every feature. */
export type FeatureDeps = Services;

/**
 * A slice of the API: its resolver classes, their wired instances, and the shield rules for every
 * field it adds. Each feature folder contributes one; nothing else needs to change.
 */
export interface Feature {
  readonly name: string;
  readonly resolvers: readonly (new (...args: never[]) => object)[];
  readonly rules: RuleTree;
  /** Builds the resolver instances with their services. Absent when only the schema is needed. */
  readonly wire: (deps: FeatureDeps) => readonly object[];
  /** Models the permission layer governs (grants name them); their entities go in `entities`. */
  readonly models?: readonly ModelAccessSpec[];
  /** TypeORM entities beyond src/db/entities.ts (test models). */
  readonly entities?: readonly Function[];
}

export const systemFeature: Feature = {
  name: 'system',
  resolvers: [SystemResolver],
  rules: systemRules,
  wire: ({ clock }) => [new SystemResolver(new SystemService(clock))],
};

export const accountsFeature: Feature = {
  name: 'accounts',
  resolvers: [AccountsResolver, UserResolver, SessionResolver],
  rules: accountsRules,
  wire: ({ accounts, sessions }) => [new AccountsResolver(accounts, sessions), new UserResolver(sessions), new SessionResolver()],
};

export const mfaFeature: Feature = {
  name: 'mfa',
  resolvers: [MfaResolver, UserMfaResolver],
  rules: mfaRules,
  wire: ({ mfa, accounts }) => [new MfaResolver(mfa, accounts), new UserMfaResolver(mfa)],
};

export const accessFeature: Feature = {
  name: 'access',
  resolvers: [AccessResolver, UserAdminResolver],
  rules: accessRules,
  wire: ({ policy, userDirectory }) => [new AccessResolver(policy, userDirectory), new UserAdminResolver(userDirectory)],
};

export const firewallFeature: Feature = {
  name: 'firewall',
  resolvers: [FirewallResolver],
  rules: firewallRules,
  wire: ({ firewall }) => [new FirewallResolver(firewall)],
};

export const auditFeature: Feature = {
  name: 'audit',
  resolvers: [AuditResolver],
  rules: auditRules,
  wire: ({ dataSource }) => [new AuditResolver(new AuditReader(dataSource))],
};

export const selfAuditFeature: Feature = {
  name: 'self-audit',
  resolvers: [SelfAuditResolver],
  rules: selfAuditRules,
  wire: ({ selfAudit }) => [new SelfAuditResolver(selfAudit)],
};

export const backupFeature: Feature = {
  name: 'backup',
  resolvers: [BackupResolver],
  rules: backupRules,
  wire: ({ backups }) => [new BackupResolver(backups)],
};

/** The app's models (src/models), as a generated data API. Built once: type-graphql's metadata is global. */
export const modelsFeature: Feature = dataFeature(MODELS);

/** Every feature of the public API, in schema order. */
export const FEATURES: readonly Feature[] = [
  systemFeature,
  accountsFeature,
  mfaFeature,
  accessFeature,
  firewallFeature,
  auditFeature,
  selfAuditFeature,
  backupFeature,
  modelsFeature,
];
