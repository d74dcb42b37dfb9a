import type { FirewallDefault } from './firewall.settings';
import { Cidr, PrefixTable, addressValue, containsAddress, parseCidr } from '../net/ip';
import { FirewallAction, FirewallRule } from './firewall-rule.entity';

export interface IpVerdict {
  readonly action: FirewallAction;
  /** The rule that decided; null when FIREWALL_DEFAULT did. */
  readonly rule: FirewallRule | null;
}

/**
 * The IP rules at one moment, indexed for longest-prefix lookups. Expired rules are left out;
 * `validUntil` is when the next one expires (the owner rebuilds then).
 */
export class IpRules {
  private readonly table: PrefixTable<FirewallRule>;
  readonly validUntil: number;

  constructor(
    readonly rules: readonly FirewallRule[],
    private readonly defaultAction: FirewallDefault,
    now: number,
  ) {
    const live = rules.filter((rule) => rule.expiresAt === null || rule.expiresAt.getTime() > now);
    // For one network, DENY first: it wins over an ALLOW of the same network (the table keeps the first).
    const ordered = [...live].sort((a, b) => Number(a.action === FirewallAction.ALLOW) - Number(b.action === FirewallAction.ALLOW));
    this.table = new PrefixTable(
      ordered.flatMap((rule): (readonly [Cidr, FirewallRule])[] => {
        const cidr = parseCidr(rule.cidr);
        return cidr ? [[cidr, rule]] : [];
      }),
    );
    this.validUntil = Math.min(Infinity, ...live.flatMap((rule) => (rule.expiresAt ? [rule.expiresAt.getTime()] : [])));
  }

  verdict(address: string): IpVerdict {
    const rule = this.table.lookup(address);
    if (rule) return { action: rule.action, rule };
    return { action: this.defaultAction === 'deny' ? FirewallAction.DENY : FirewallAction.ALLOW, rule: null };
  }

  /**
   * When the address is first denied from `now` on, as the rules stand (no change made meanwhile):
   * `now` when it is denied already, the moment an expiring rule runs out when that denies it, or
   * null when it stays allowed for good. Only the expiries of rules matching the address can change
   * its verdict, so only those moments are looked at.
   */
  deniedFrom(address: string, now: number): number | null {
    if (this.verdict(address).action === FirewallAction.DENY) return now;
    const value = addressValue(address);
    if (!value) return null;
    const live = this.rules.filter((rule) => rule.expiresAt === null || rule.expiresAt.getTime() > now);
    const moments = [
      ...new Set(
        live.flatMap((rule) => {
          const cidr = rule.expiresAt ? parseCidr(rule.cidr) : null;
          return cidr && containsAddress(cidr, value) ? [rule.expiresAt!.getTime()] : [];
        }),
      ),
    ].sort((a, b) => a - b);
    for (const moment of moments) {
      if (new IpRules(live, this.defaultAction, moment).verdict(address).action === FirewallAction.DENY) return moment;
    }
    return null;
  }

  /** The same rules with one added or removed: for "would this lock me out?" before the change. */
  with(change: { add?: FirewallRule; removeId?: string }, now: number): IpRules {
    const rules = this.rules.filter((rule) => rule.id !== change.removeId);
    return new IpRules(change.add ? [...rules, change.add] : rules, this.defaultAction, now);
  }
}
