import { IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';
import { GraphQLJSON } from 'graphql-scalars';
import { ArgsType, Field, ID, InputType, Int, ObjectType } from 'type-graphql';
import { PageArgs, PageInfo } from '../graphql/pagination';
import type { AuditEvent } from '../audit/audit-event.entity';

@ObjectType('AuditEvent', {
  description: 'One security event of the hash-chained audit log. Never holds a secret, a code, a token or decrypted personal data.',
})
export class AuditEventType {
  @Field(() => ID, { description: 'Position in the chain (ascending).' })
  id!: string;

  @Field({ description: 'When it happened (UTC).' })
  at!: Date;

  @Field({ description: 'What happened, snake_case past tense: sign_in_succeeded, grant_added, firewall_rule_removed …' })
  action!: string;

  @Field({ description: 'success, failure or denied.' })
  outcome!: string;

  @Field(() => ID, { nullable: true, description: 'The account that acted; null for anonymous callers and the CLI.' })
  actorId!: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'The kind of thing acted on: user, session, role, permission_grant, firewall_rule …',
  })
  targetType!: string | null;

  @Field(() => String, { nullable: true, description: 'Its id.' })
  targetId!: string | null;

  @Field(() => String, { nullable: true, description: 'The client address (as resolved through TRUST_PROXY).' })
  ipAddress!: string | null;

  @Field(() => String, { nullable: true, description: "The client's User-Agent." })
  userAgent!: string | null;

  @Field(() => String, { nullable: true, description: "The request's X-Request-Id, to find its log lines." })
  requestId!: string | null;

  @Field(() => GraphQLJSON, { description: 'Non-secret details of the event.' })
  metadata!: unknown;

  static of(event: AuditEvent): AuditEventType {
    return Object.assign(new AuditEventType(), event);
  }
}

@ObjectType({ description: 'One audit event in a page.' })
export class AuditEventEdge {
  @Field({ description: 'Pass it as `after` to continue after this event.' })
  cursor!: string;

  @Field(() => AuditEventType, { description: 'The event.' })
  node!: AuditEventType;
}

@ObjectType({ description: 'A page of audit events, newest first.' })
export class AuditEventConnection {
  @Field(() => [AuditEventEdge], { description: 'The events of this page.' })
  edges!: AuditEventEdge[];

  @Field(() => PageInfo, { description: 'Whether more follow, and where to continue.' })
  pageInfo!: PageInfo;
}

@InputType({ description: 'Narrows the audit log; all given conditions must hold.' })
export class AuditEventFilter {
  @Field(() => String, { nullable: true, description: 'Exactly this action, e.g. "sign_in_failed".' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  action?: string | null;

  @Field(() => ID, { nullable: true, description: 'Events of this account (User.id).' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  actorId?: string | null;

  @Field(() => String, { nullable: true, description: 'Events about this target id.' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  targetId?: string | null;

  @Field(() => String, { nullable: true, description: 'success, failure or denied.' })
  @IsOptional()
  @IsString()
  @MaxLength(20)
  outcome?: string | null;

  @Field(() => Date, { nullable: true, description: 'At or after this moment.' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Before this moment.' })
  to?: Date | null;
}

@ArgsType()
export class AuditEventsArgs extends PageArgs {
  @Field(() => AuditEventFilter, { nullable: true, description: 'Conditions; leave out for every event.' })
  @IsOptional()
  @ValidateNested()
  filter?: AuditEventFilter | null;
}

@ObjectType({ description: 'The result of re-checking the whole hash chain.' })
export class AuditLogVerification {
  @Field({ description: 'Every row links to the one before it and hashes to what it says.' })
  ok!: boolean;

  @Field(() => Int, { description: 'Rows examined (up to and including the first broken one).' })
  checked!: number;

  @Field(() => ID, {
    nullable: true,
    description: 'The first row whose hash or link is wrong (edited, inserted, or following a deleted row); null when ok.',
  })
  firstBrokenId!: string | null;
}

@ObjectType({
  description:
    "The newest event of the audit log: the position to anchor outside this database (a ticket, another system's log), " +
    'as `bastion audit log head` prints it. `bastion audit log verify --head id:hash` later proves the log still holds it unchanged.',
})
export class AuditChainHead {
  @Field(() => ID, { description: "The event's position in the chain (AuditEvent.id)." })
  id!: string;

  @Field({ description: "The event's keyed chain hash (hex), which covers every event before it." })
  hash!: string;

  @Field({ description: 'When it happened (UTC).' })
  at!: Date;
}
