import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum CheckStatusValue {
  PASS = 'PASS',
  WARN = 'WARN',
  FAIL = 'FAIL',
}

registerEnumType(CheckStatusValue, {
  name: 'CheckStatus',
  description: 'How a self-audit check came out.',
  valuesConfig: {
    PASS: { description: 'In place.' },
    WARN: { description: 'Works, but weaker than it should be; see the remedy.' },
    FAIL: { description: 'Missing or broken; fix it (bastion audit exits 1).' },
  },
});

@ObjectType({ description: 'One check of the self-audit.' })
export class SecurityCheck {
  @Field({ description: 'Stable id, <measure>.<check>, e.g. "encryption.keys_configured".' })
  id!: string;

  @Field({ description: 'encryption, access_control, firewall, backups or audits.' })
  measure!: string;

  @Field(() => CheckStatusValue, { description: 'PASS, WARN or FAIL.' })
  status!: CheckStatusValue;

  @Field({ description: 'What was found.' })
  detail!: string;

  @Field(() => String, { nullable: true, description: 'What to do about it; null when it passes.' })
  remedy!: string | null;
}

@ObjectType({ description: 'A self-audit of the five security measures, run just now.' })
export class SecurityAuditReport {
  @Field({ description: 'When it ran.' })
  ranAt!: Date;

  @Field(() => Int, { description: 'Checks that passed.' })
  passed!: number;

  @Field(() => Int, { description: 'Checks that warned.' })
  warnings!: number;

  @Field(() => Int, { description: 'Checks that failed.' })
  failures!: number;

  @Field(() => [SecurityCheck], { description: 'Every check, grouped by measure.' })
  checks!: SecurityCheck[];
}
