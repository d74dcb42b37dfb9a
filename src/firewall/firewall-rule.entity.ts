import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Check, Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export enum FirewallAction {
  ALLOW = 'allow',
  DENY = 'deny',
}

registerEnumType(FirewallAction, {
  name: 'FirewallAction',
  description: 'What a firewall rule does with the addresses it matches.',
  valuesConfig: {
    ALLOW: { description: 'Let them in (also through FIREWALL_DEFAULT=deny).' },
    DENY: { description: 'Refuse them: HTTP 403, IP_BLOCKED, before any GraphQL work.' },
  },
});

/** An IP rule: a network, allowed or denied, optionally until a moment. The most specific matching network decides. */
@ObjectType({
  description:
    'An IP rule. For a client address, the rule with the most specific matching network decides; FIREWALL_DEFAULT applies when none matches.',
})
@Entity('firewall_rules')
@Check('firewall_rules_action', `"action" IN ('allow', 'deny')`)
export class FirewallRule {
  @Field(() => ID, { description: 'Pass it to removeFirewallRule.' })
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Field({ description: 'The network, canonical form (host bits cleared), e.g. 203.0.113.0/24 or 2001:db8::/32.' })
  @Column({ type: 'text' })
  cidr!: string;

  @Field(() => FirewallAction, { description: 'ALLOW or DENY.' })
  @Column({ type: 'text' })
  action!: FirewallAction;

  @Field(() => String, { nullable: true, description: 'Why it exists.' })
  @Column({ type: 'text', nullable: true })
  note!: string | null;

  @Field(() => Date, { nullable: true, description: 'When it stops applying; null for never.' })
  @Column({ type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @Field({ description: 'When it was added.' })
  @CreateDateColumn({ type: 'timestamptz' })
  createdAt!: Date;

  @Field(() => ID, { nullable: true, description: 'The admin who added it; null when added with the CLI.' })
  @Column({ type: 'uuid', nullable: true })
  createdBy!: string | null;
}
