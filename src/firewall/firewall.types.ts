import { IsOptional, IsString, MaxLength } from 'class-validator';
import { Field, InputType, Int, ObjectType } from 'type-graphql';
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

@ObjectType({ description: 'One rate limit: so many requests (or calls) per window, per client address or per account.' })
export class RateLimitSetting {
  @Field({ description: 'Stable snake_case name: per_ip, per_user, sign_in, sign_up, verify_mfa, password_reset.' })
  name!: string;

  @Field({ description: 'What it counts, and per what.' })
  description!: string;

  @Field(() => Int, { description: 'How many a window allows.' })
  limit!: number;

  @Field(() => Int, { description: 'The window, in seconds.' })
  windowSeconds!: number;

  @Field({ description: 'The environment variable that sets it, as limit/windowSeconds (e.g. BASTION_RATE_LIMIT_IP=600/60).' })
  setting!: string;
}

@ObjectType({ description: 'The rate limits this server runs with, as configured.' })
export class RateLimitSettings {
  @Field({ description: 'Whether they are enforced (BASTION_RATE_LIMITS); when false, none of the limits applies.' })
  enabled!: boolean;

  @Field({ description: 'Where the counters live, shared by every instance: "postgres" (the default), or "redis" when REDIS_URL is set.' })
  store!: string;

  @Field(() => [RateLimitSetting], { description: 'Every limit: per client address, per account, then the stricter per-operation ones.' })
  limits!: RateLimitSetting[];
}
