import { Arg, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { actorOf } from '../audit/actor';
import type { Context } from '../context';
import { FirewallRule } from './firewall-rule.entity';
import type { FirewallService } from './firewall.service';
import { AddFirewallRuleInput, RateLimitSettings } from './firewall.types';

/** IP rules and the rate limits in force, for admins (every field is ruled isAdmin). */
@Resolver()
export class FirewallResolver {
  constructor(
    private readonly firewall: FirewallService,
    private readonly rateLimitSettings: RateLimitSettings,
  ) {}

  @Query(() => [FirewallRule], { description: 'Every IP rule, expired ones included, newest first.' })
  firewallRules(): Promise<FirewallRule[]> {
    return this.firewall.list();
  }

  @Query(() => RateLimitSettings, { description: 'The rate limits this server runs with (its configuration), for display.' })
  rateLimits(): RateLimitSettings {
    return this.rateLimitSettings;
  }

  @Mutation(() => FirewallRule, {
    description:
      'Adds an IP rule, in force at the next request on every instance. Refused (BAD_USER_INPUT) when it would block your own address, unless confirmLockout.',
  })
  addFirewallRule(@Arg('input') input: AddFirewallRuleInput, @Ctx() context: Context): Promise<FirewallRule> {
    return this.firewall.add(input, actorOf(context), { confirmLockout: input.confirmLockout });
  }

  @Mutation(() => Boolean, {
    description:
      'Removes an IP rule, in force at the next request on every instance. Refused when that would block your own address, unless confirmLockout.',
  })
  async removeFirewallRule(
    @Arg('id', () => ID) id: string,
    @Arg('confirmLockout', {
      defaultValue: false,
      description: 'Required when removing the rule would block the address you are calling from.',
    })
    confirmLockout: boolean,
    @Ctx() context: Context,
  ): Promise<boolean> {
    await this.firewall.remove(id, actorOf(context), { confirmLockout });
    return true;
  }
}
