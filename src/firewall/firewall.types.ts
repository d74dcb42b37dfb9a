import { IsOptional, IsString, MaxLength } from 'class-validator';
import { Field, InputType } from 'type-graphql';
import { FirewallAction } from './firewall-rule.entity';

@InputType({ description: 'A new IP rule.' })
export class AddFirewallRuleInput {
  @Field({ description: 'An IP address or a network: 203.0.113.7, 203.0.113.0/24, 2001:db8::/32.' })
  @IsString()
  @MaxLength(64)
  cidr!: string;

  @Field(() => FirewallAction, { description: 'ALLOW or DENY.' })
  action!: FirewallAction;

  @Field(() => String, { nullable: true, description: 'Why (at most 200 characters).' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  note?: string | null;

  @Field(() => Date, { nullable: true, description: 'When it stops applying; leave out for never.' })
  expiresAt?: Date | null;

  @Field({ defaultValue: false, description: 'Required when the rule would block the address you are calling from.' })
  confirmLockout: boolean = false;
}
