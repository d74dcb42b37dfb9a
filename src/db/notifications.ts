import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Notification } from 'pg';
import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from '../logging';
import { DatabaseUnavailableError, describeUrl } from './database';
import { FreshCall } from './fresh-call';
import { TIMED_OUT, settleWithin } from '../settle-within';
import { severableClient } from './severable-client';

export interface NotificationsOptions {
  readonly url: string;
  readonly logger: Logger;
  /** Shown in pg_stat_activity, so operators (and tests) can tell the listener from pooled connections. */
  readonly applicationName?: string;
  /** Milliseconds to wait before reconnect attempt `attempt` (1, 2, …); tests pass `() => 0`. */
  readonly reconnectDelayMs?: (attempt: number) => number;
  /** How long `sync` waits for the listening connection (default SYNC_TIMEOUT_MS). */
  readonly syncTimeoutMs?: number;
}

/** Channels are fixed names chosen in code; the pattern also keeps them safe to quote into LISTEN. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/** How long `sync` waits for the listening connection to answer before it stops trusting the caches. */
const SYNC_TIMEOUT_MS = 2_000;

/** 100 ms doubling to a 10 s ceiling: quick after a blip, gentle on a database that is down for a while. */
export function reconnectBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt - 1, 16), 10_000);
}

/**
 * Cross-instance cache invalidation over PostgreSQL LISTEN/NOTIFY. One dedicated connection (a
 * pooled one would be handed to queries and lose its LISTENs) listens on every subscribed channel.
 * PostgreSQL keeps no notifications for a listener that is away, so whenever messages may have
 * been missed (after a reconnect, or when `sync` cannot reach the listener) the `onMissed`
 * listeners run: callers clear their caches there.
 */
export class Notifications {
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private readonly missedListeners = new Set<() => void>();
  private readonly reconnectDelayMs: (attempt: number) => number;
  /** The connected, listening client; undefined while (re)connecting or stopped. */
  private client: Client | undefined;
  private stopped = true;
  private connecting = false;
  private reconnecting: Promise<void> | undefined;
  private abortWaits = new AbortController();
  private readonly roundTrips = new FreshCall(() => this.roundTrip());
  /** Cuts `client`'s connection (one that went silent). */
  private severClient: () => void = () => undefined;

  constructor(private readonly options: NotificationsOptions) {
    this.reconnectDelayMs = options.reconnectDelayMs ?? reconnectBackoffMs;
    // Everything changed at once (a restore): every cache starts over, as after a missed message.
    this.subscribe(EVERYTHING_CHANGED_CHANNEL, () => this.missed());
  }

  /** Connects and LISTENs on the channels subscribed so far; rejects when the database cannot be reached. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.abortWaits = new AbortController();
    this.connecting = true;
    try {
      await this.connect();
    } catch (error) {
      this.stopped = true;
      throw new DatabaseUnavailableError(this.options.url, error);
    } finally {
      this.connecting = false;
    }
    // Lost again between connecting and here: the loss handler left the reconnect to us.
    if (!this.client) this.reconnecting = this.reconnect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abortWaits.abort();
    await this.reconnecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /**
   * Calls `onMessage` with each payload sent to `channel` by any instance, from now on (a message
   * sent before this subscription's LISTEN reaches the server is not seen: subscribe before start).
   * Returns the unsubscribe function.
   */
  subscribe(channel: string, onMessage: (payload: string) => void): () => void {
    assertChannel(channel);
    const handler = (payload: string) => onMessage(payload); // its own identity, so one function can subscribe twice
    let channelHandlers = this.handlers.get(channel);
    if (!channelHandlers) {
      channelHandlers = new Set();
      this.handlers.set(channel, channelHandlers);
      this.send(`LISTEN ${quoteChannel(channel)}`);
    }
    channelHandlers.add(handler);
    return () => {
      const current = this.handlers.get(channel);
      if (!current?.delete(handler) || current.size > 0) return;
      this.handlers.delete(channel);
      this.send(`UNLISTEN ${quoteChannel(channel)}`);
    };
  }

  /**
   * Called whenever messages may have been missed: after every reconnect (once the channels are
   * listened to again), and when `sync` could not reach the listener. Returns the remover.
   */
  onMissed(listener: () => void): () => void {
    const entry = () => listener();
    this.missedListeners.add(entry);
    return () => {
      this.missedListeners.delete(entry);
    };
  }

  /**
   * Resolves once every notification committed before this call has been dispatched, so a change
   * acknowledged by any instance is in force here at the next request, not some milliseconds later.
   * PostgreSQL hands a listening session its pending notifications before it answers that
   * session's next query, so one round trip on the listening connection, started after this call,
   * is the proof. Calls made while a round trip is in flight share the next one (at most one in
   * flight and one queued, however many requests wait). When the listener cannot answer
   * (reconnecting, or silent for `syncTimeoutMs`) the `onMissed` listeners run instead.
   */
  sync(): Promise<void> {
    return this.stopped ? Promise.resolve() : this.roundTrips.run();
  }

  private async roundTrip(): Promise<void> {
    const client = this.client;
    if (!client) {
      this.missed();
      return;
    }
    const timeoutMs = this.options.syncTimeoutMs ?? SYNC_TIMEOUT_MS;
    try {
      if ((await settleWithin(client.query('SELECT 1'), timeoutMs)) === TIMED_OUT) {
        // A connection that stays silent this long is dead or partitioned: drop it and reconnect
        // (rather than queue every later round trip behind this one until TCP gives up).
        this.options.logger.warn(
          { database: describeUrl(this.options.url), timeoutMs },
          'notifications: the listening connection did not answer; caches start over',
        );
        this.missed();
        this.lost(client, new Error(`the LISTEN connection did not answer within ${timeoutMs} ms`));
      }
    } catch {
      // The connection is going away ('error'/'end' start the reconnect); meanwhile trust nothing cached.
      this.missed();
    }
  }

  private missed(): void {
    for (const listener of [...this.missedListeners]) {
      try {
        listener();
      } catch (error) {
        this.options.logger.error({ err: error }, 'notifications: an onMissed listener failed');
      }
    }
  }

  private async connect(): Promise<void> {
    // Severable: a connection that stopped answering is cut at once (client.end() waits on the peer).
    const { client, sever } = severableClient({
      connectionString: this.options.url,
      application_name: this.options.applicationName ?? 'bastion-notifications',
      // This connection only ever waits; keepalive is what notices a peer that vanished silently.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 5_000,
    });
    // An 'error' event without a listener would crash the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => this.dispatch(message));
    try {
      await client.connect();
      if (this.stopped) throw new Error('stopped while connecting');
      this.client = client;
      this.severClient = sever;
      // Read after `client` is set: a channel subscribed from here on sends its own LISTEN.
      const channels = [...this.handlers.keys()];
      if (channels.length > 0) await client.query(channels.map((channel) => `LISTEN ${quoteChannel(channel)}`).join('; '));
    } catch (error) {
      if (this.client === client) this.client = undefined;
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private lost(client: Client, error?: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.severClient();
    if (this.stopped) return;
    this.options.logger.warn(
      { database: describeUrl(this.options.url), err: error },
      'notifications: lost the LISTEN connection; reconnecting (messages sent meanwhile are lost)',
    );
    if (!this.connecting) this.reconnecting = this.reconnect();
  }

  private async reconnect(): Promise<void> {
    this.connecting = true;
    try {
      for (let attempt = 1; !this.stopped; attempt += 1) {
        try {
          await this.connect();
        } catch (error) {
          if (this.stopped) return;
          const delayMs = this.reconnectDelayMs(attempt);
          this.options.logger.warn(
            { database: describeUrl(this.options.url), attempt, retryInMs: delayMs, err: error },
            'notifications: reconnect failed',
          );
          await sleep(delayMs, undefined, { signal: this.abortWaits.signal }).catch(() => undefined);
          continue;
        }
        // Lost again before we got here: go round once more.
        if (!this.client) continue;
        this.options.logger.info({ database: describeUrl(this.options.url), attempt }, 'notifications: reconnected and listening again');
        this.missed();
        return;
      }
    } finally {
      this.connecting = false;
      this.reconnecting = undefined;
    }
  }

  /** Runs a LISTEN/UNLISTEN now if connected; otherwise the next connect listens on every channel anyway. */
  private send(statement: string): void {
    const client = this.client;
    if (!client) return;
    // Errors here mean the connection is going away: the reconnect re-LISTENs every channel.
    client
      .query(statement)
      .catch((error: unknown) => this.options.logger.warn({ err: error, statement }, 'notifications: statement failed'));
  }

  private dispatch(message: Notification): void {
    const channelHandlers = this.handlers.get(message.channel);
    if (!channelHandlers) return;
    for (const handler of [...channelHandlers]) {
      try {
        handler(message.payload ?? '');
      } catch (error) {
        this.options.logger.error({ err: error, channel: message.channel }, 'notifications: a subscriber failed');
      }
    }
  }
}

/**
 * Sends `payload` to every instance listening on `channel`. Given a transaction's manager,
 * PostgreSQL delivers it only when that transaction commits, so listeners never reload the old state.
 * The payload is limited to 8000 bytes: send an id, not the row.
 */
/** The channel that tells every instance all its caches are stale (see notifyEverythingChanged). */
const EVERYTHING_CHANGED_CHANNEL = 'bastion_everything';

/**
 * Tells every instance, at commit, that the whole database was replaced (a restore): each cache
 * that listens for its own changes starts over, as it does when messages may have been missed.
 */
export async function notifyEverythingChanged(manager: EntityManager): Promise<void> {
  await notify(manager, EVERYTHING_CHANGED_CHANNEL, 'restored');
}

export async function notify(manager: EntityManager | DataSource, channel: string, payload: string): Promise<void> {
  assertChannel(channel);
  await manager.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new Error(`Notification channel "${channel}" must match ${CHANNEL} (lower-case identifier)`);
}

function quoteChannel(channel: string): string {
  // Quoted, so PostgreSQL does not fold case; pg_notify() compares channel names as given.
  return `"${channel}"`;
}
