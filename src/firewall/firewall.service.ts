import { DataSource, EntityManager, IsNull, LessThanOrEqual, MoreThan } from 'typeorm';
import { Actor, SCHEDULE_ACTOR } from '../audit/actor';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { FirewallDefault } from './firewall.settings';
import type { Notifications } from '../db/notifications';
import { NotifiedCache } from '../db/notified-cache';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import { addressValue, containsAddress, formatCidr, parseCidr } from '../net/ip';
import { FirewallAction, FirewallRule } from './firewall-rule.entity';
import { IpRules, IpVerdict } from './ip-rules';

export const FIREWALL_CHANNEL = 'bastion_firewall';
const MAX_AGE_MS = 60_000;
const MAX_NOTE = 200;
/** The pruning audit event lists at most this many of the rules it removed (the count is always exact). */
const MAX_PRUNED_LISTED = 100;

export interface NewFirewallRule {
  readonly cidr: string;
  readonly action: FirewallAction;
  readonly note?: string | null;
  readonly expiresAt?: Date | null;
}

/**
 * IP rules (docs/security.md#net-2): stored in `firewall_rules`, cached per instance and reloaded at
 * the next request after a change anywhere (NOTIFY), or when a rule expires. Changes made through
 * the API refuse to lock the caller's own address out unless confirmed; the CLI talks to the
 * database directly, so it always works.
 */
export class FirewallService {
  private readonly cache: NotifiedCache<IpRules>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly options: { defaultAction: FirewallDefault },
    notifications: Notifications,
  ) {
    this.cache = new NotifiedCache(FIREWALL_CHANNEL, () => this.load(), clock, notifications, {
      maxAgeMs: MAX_AGE_MS,
      staleAt: (rules) => rules.validUntil,
    });
  }

  /** The verdict for one client address. */
  async check(address: string): Promise<IpVerdict> {
    return (await this.cache.current()).verdict(address);
  }

  /** Every rule, expired ones included, newest first. */
  list(): Promise<FirewallRule[]> {
    return this.dataSource.getRepository(FirewallRule).find({ order: { createdAt: 'DESC', id: 'ASC' } });
  }

  /**
   * Adds a rule, in force at the next request on every instance. `caller` (the API's client
   * address) must not end up denied unless `confirmLockout`.
   */
  async add(input: NewFirewallRule, actor: Actor, options: { confirmLockout?: boolean } = {}): Promise<FirewallRule> {
    const cidr = parseCidr(input.cidr);
    if (!cidr)
      throw new AppError('BAD_USER_INPUT', 'cidr must be an IP address or a network such as 203.0.113.0/24 or 2001:db8::/32.', {
        details: { field: 'cidr' },
      });
    const note = input.note?.trim() || null;
    if (note && note.length > MAX_NOTE)
      throw new AppError('BAD_USER_INPUT', `note has at most ${MAX_NOTE} characters.`, { details: { field: 'note' } });
    const now = this.clock.now();
    if (input.expiresAt && input.expiresAt.getTime() <= now.getTime())
      throw new AppError('BAD_USER_INPUT', 'expiresAt must be in the future.', { details: { field: 'expiresAt' } });
    const rule = Object.assign(new FirewallRule(), {
      cidr: formatCidr(cidr),
      action: input.action,
      note,
      expiresAt: input.expiresAt ?? null,
      createdBy: actor.actorId,
    });
    return this.dataSource
      .transaction(async (manager) => {
        // One change at a time, so the lockout check sees the rules it is changing.
        await manager.query("SELECT pg_advisory_xact_lock(hashtext('bastion_firewall'))");
        const existing = await manager.findOne(FirewallRule, {
          where: [
            { cidr: rule.cidr, expiresAt: IsNull() },
            { cidr: rule.cidr, expiresAt: MoreThan(now) },
          ],
        });
        if (existing) throw new AppError('CONFLICT', `A rule for ${rule.cidr} exists (id ${existing.id}); remove it first.`);
        const current = new IpRules(await manager.find(FirewallRule), this.options.defaultAction, now.getTime());
        const added = Object.assign(new FirewallRule(), rule, { id: 'new' });
        this.refuseLockout(current, current.with({ add: added }, now.getTime()), added, now.getTime(), actor, options.confirmLockout);
        const saved = await manager.save(rule);
        await this.audit.append(manager, {
          action: 'firewall_rule_added',
          outcome: 'success',
          targetType: 'firewall_rule',
          targetId: saved.id,
          metadata: { cidr: saved.cidr, ruleAction: saved.action, expiresAt: saved.expiresAt?.toISOString() ?? null },
          ...actor,
        });
        await this.cache.announce(manager);
        return saved;
      })
      .finally(() => this.cache.invalidate());
  }

  async remove(id: string, actor: Actor, options: { confirmLockout?: boolean } = {}): Promise<void> {
    const now = this.clock.now().getTime();
    await this.dataSource
      .transaction(async (manager) => {
        await manager.query("SELECT pg_advisory_xact_lock(hashtext('bastion_firewall'))");
        const rule = isUuid(id) ? await manager.findOneBy(FirewallRule, { id }) : null;
        if (!rule) throw new AppError('NOT_FOUND', 'No firewall rule with this id.');
        const current = new IpRules(await manager.find(FirewallRule), this.options.defaultAction, now);
        this.refuseLockout(current, current.with({ removeId: id }, now), rule, now, actor, options.confirmLockout);
        await manager.delete(FirewallRule, { id });
        await this.audit.append(manager, {
          action: 'firewall_rule_removed',
          outcome: 'success',
          targetType: 'firewall_rule',
          targetId: id,
          metadata: { cidr: rule.cidr, ruleAction: rule.action },
          ...actor,
        });
        await this.cache.announce(manager);
      })
      .finally(() => this.cache.invalidate());
  }

  /**
   * Deletes the rules that expired before `cutoff` (run by the maintenance job, in its transaction),
   * with one aggregated `firewall_rules_pruned` audit event. Expired rules decide nothing already;
   * this only keeps the table, and `firewallRules`, short.
   */
  async prune(manager: EntityManager, cutoff: Date): Promise<number> {
    // The same lock as a change: a lockout check in flight sees the rules before or after, never half.
    await manager.query("SELECT pg_advisory_xact_lock(hashtext('bastion_firewall'))");
    const expired = await manager.find(FirewallRule, {
      where: { expiresAt: LessThanOrEqual(cutoff) },
      order: { expiresAt: 'ASC', id: 'ASC' },
    });
    if (expired.length === 0) return 0;
    await manager.delete(
      FirewallRule,
      expired.map((rule) => rule.id),
    );
    await this.audit.append(manager, {
      action: 'firewall_rules_pruned',
      outcome: 'success',
      targetType: 'firewall_rule',
      metadata: {
        rules: expired.length,
        expiredBefore: cutoff.toISOString(),
        removed: expired.slice(0, MAX_PRUNED_LISTED).map((rule) => ({
          id: rule.id,
          cidr: rule.cidr,
          ruleAction: rule.action,
          expiresAt: rule.expiresAt?.toISOString() ?? null,
        })),
      },
      ...SCHEDULE_ACTOR,
    });
    // The verdicts are the same (those rules had expired); other instances reload for a shorter list.
    await this.cache.announce(manager);
    return expired.length;
  }

  /**
   * docs/security.md#net-3: a change made through the API must not block the caller's own address,
   * now or later. Now: the address is allowed before the change and denied after it. Later: the
   * change (`changed`, the rule added or removed) decides for the address, and after it the address
   * would be denied once an expiring rule runs out (an expiring ALLOW that is all that lets it in
   * under FIREWALL_DEFAULT=deny, or the last permanent ALLOW removed while only expiring ones remain).
   */
  private refuseLockout(
    before: IpRules,
    after: IpRules,
    changed: FirewallRule,
    now: number,
    actor: Actor,
    confirmed: boolean | undefined,
  ): void {
    const address = actor.ipAddress;
    if (confirmed || !address) return;
    if (before.verdict(address).action !== FirewallAction.ALLOW) return;
    const blockedAt = after.deniedFrom(address, now);
    if (blockedAt === null) return;
    if (blockedAt === now) {
      throw new AppError(
        'BAD_USER_INPUT',
        `This change would block your own address (${address}): pass confirmLockout: true if you mean it (the CLI can always undo it).`,
        { details: { field: 'confirmLockout' } },
      );
    }
    // Later: only a change that decides for this address is refused (an unrelated rule changes nothing for it).
    const cidr = parseCidr(changed.cidr);
    const value = addressValue(address);
    if (!cidr || !value || !containsAddress(cidr, value)) return;
    throw new AppError(
      'BAD_USER_INPUT',
      `After this change your own address (${address}) would be blocked from ${new Date(blockedAt).toISOString()}, when the rule that lets it in expires: ` +
        'add an ALLOW without expiresAt that covers it first, or pass confirmLockout: true if you mean it (the CLI can always undo it).',
      { details: { field: 'confirmLockout' } },
    );
  }

  private async load(): Promise<IpRules> {
    return new IpRules(await this.dataSource.getRepository(FirewallRule).find(), this.options.defaultAction, this.clock.now().getTime());
  }
}
