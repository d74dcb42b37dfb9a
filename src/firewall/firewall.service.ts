import { DataSource, IsNull, MoreThan } from 'typeorm';
import type { Actor } from '../audit/actor';
import type { AuditLog } from '../audit/audit-log';
import type { Clock } from '../clock';
import type { FirewallDefault } from './firewall.settings';
import type { Notifications } from '../db/notifications';
import { NotifiedCache } from '../db/notified-cache';
import { isUuid } from '../db/uuid';
import { AppError } from '../errors';
import { formatCidr, parseCidr } from '../net/ip';
import { FirewallAction, FirewallRule } from './firewall-rule.entity';
import { IpRules, IpVerdict } from './ip-rules';

export const FIREWALL_CHANNEL = 'bastion_firewall';
const MAX_AGE_MS = 60_000;
const MAX_NOTE = 200;

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
        this.refuseLockout(
          current,
          current.with({ add: Object.assign(new FirewallRule(), rule, { id: 'new' }) }, now.getTime()),
          actor,
          options.confirmLockout,
        );
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
        this.refuseLockout(current, current.with({ removeId: id }, now), actor, options.confirmLockout);
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

  private refuseLockout(before: IpRules, after: IpRules, actor: Actor, confirmed: boolean | undefined): void {
    const address = actor.ipAddress;
    if (confirmed || !address) return;
    if (before.verdict(address).action === FirewallAction.ALLOW && after.verdict(address).action === FirewallAction.DENY) {
      throw new AppError(
        'BAD_USER_INPUT',
        `This change would block your own address (${address}): pass confirmLockout: true if you mean it (the CLI can always undo it).`,
        { details: { field: 'confirmLockout' } },
      );
    }
  }

  private async load(): Promise<IpRules> {
    return new IpRules(await this.dataSource.getRepository(FirewallRule).find(), this.options.defaultAction, this.clock.now().getTime());
  }
}
