import { AuditReader } from '../audit/audit-reader';
import { defineFeature } from '../feature';
import { unruledFieldsOf } from '../schema';
import { mergeRuleTrees } from '../shield/shield';
import { AuditResolver } from './audit-log.resolver';
import { auditRules } from './audit-log.rules';
import { registerAuditCommands } from './self-audit.cli';
import { SelfAuditResolver } from './self-audit.resolver';
import { selfAuditRules } from './self-audit.rules';
import { SelfAudit } from './self-audit.service';
import { SELF_AUDIT_SETTINGS } from './self-audit.settings';

/** The services this feature provides. */
export interface SelfAuditServices {
  /** The checks of the five measures, run on demand, by `bastion audit` and on a schedule. */
  readonly selfAudit: SelfAudit;
}

declare module '../feature' {
  interface Services extends SelfAuditServices {}
}

/** Security audits for admins: the self-audit of the five measures, and reading and verifying the audit log. */
export const selfAuditFeature = defineFeature<keyof SelfAuditServices>()({
  name: 'self-audit',
  settings: SELF_AUDIT_SETTINGS,
  needs: ['audit', 'keyring', 'backups', 'fileContents', 'fileKeys'],
  provides: {
    selfAudit: ({ dataSource, clock, audit, logger, config, keyring, backups, fileContents, fileKeys, features }) =>
      new SelfAudit(dataSource, clock, audit, logger, config, keyring, backups.options, fileContents, [fileKeys], () =>
        unruledFieldsOf(features),
      ),
  },
  // The scheduled run belongs to servers, not to CLI commands that build the same services.
  schedule: ({ selfAudit, config }) => (config.auditSchedule ? selfAudit.schedule(config.auditSchedule) : () => undefined),
  resolvers: [SelfAuditResolver, AuditResolver],
  rules: mergeRuleTrees([selfAuditRules, auditRules]),
  wire: ({ selfAudit, dataSource, keyring }) => [new SelfAuditResolver(selfAudit), new AuditResolver(new AuditReader(dataSource, keyring))],
  commands: registerAuditCommands,
});
