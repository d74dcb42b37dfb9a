import { AdminNetworks } from '../access/admin-networks';
import { SESSION_CHANNEL } from '../accounts/session-cache';
import type { ModelDefinition } from '../data/define-model';
import { defineFeature } from '../feature';
import { ChangeListener } from './change-listener';
import { RealtimeEvent } from './realtime-event.entity';
import { REALTIME_SETTINGS } from './realtime.settings';
import { SocketServer } from './socket-server';
import { SubscriptionHub } from './subscription-hub';
import { subscriptionsOverWebSocketOnly } from './subscription-gate';
import { checkChangeTriggers } from './change-triggers';
import { RedisChangePublisher, RedisChanges, changesChannel } from './redis-changes';

/** The services this feature provides. */
export interface RealtimeServices {
  /** This instance's subscriptions and the per-subscriber decisions. */
  readonly subscriptionHub: SubscriptionHub;
  /** Hears every instance's committed changes and reads each changed row once. */
  readonly changeListener: ChangeListener;
  /** The change events' Redis pub/sub when REDIS_URL is set; null: PostgreSQL NOTIFY. */
  readonly redisChanges: RedisChanges | null;
}

declare module '../feature' {
  interface Services extends RealtimeServices {}
}

/**
 * Change events are kept this long: a delivery reads an event once, within milliseconds of its
 * commit. Short, since `before` holds the placing columns' values (a deleted post's title, too);
 * the hourly maintenance job removes them, so none outlives an hour and ten minutes.
 */
const EVENTS_KEPT_MS = 10 * 60 * 1000;

const subscribedModels = (features: readonly { dataModels?: readonly ModelDefinition[] }[]) =>
  features.flatMap((feature) => feature.dataModels ?? []).filter((model) => model.subscriptions);

/**
 * Live updates: GraphQL subscriptions over WebSocket on /graphql, each change of a subscribed
 * model read once per instance and decided per subscriber with its rights at that moment.
 */
export const realtimeFeature = defineFeature<keyof RealtimeServices>()({
  name: 'realtime',
  settings: REALTIME_SETTINGS,
  entities: [RealtimeEvent],
  subscribers: [RedisChangePublisher],
  needs: ['sessionCache', 'policy', 'firewall', 'hits'],
  provides: {
    subscriptionHub: ({ config }) => new SubscriptionHub(config.wsMaxSubscriptions),
    changeListener: ({ dataSource, features, subscriptionHub, logger, notifications, redisChanges }) =>
      new ChangeListener(dataSource, subscribedModels(features), subscriptionHub, logger, redisChanges ? null : notifications),
    redisChanges: ({ config, dataSource, databaseUrl, logger }) =>
      config.redisUrl ? new RedisChanges(config.redisUrl, changesChannel(databaseUrl), dataSource, logger) : null,
  },
  start: async ({ dataSource, features, redisChanges, changeListener }) => {
    await checkChangeTriggers(dataSource, subscribedModels(features));
    if (!redisChanges) return;
    await redisChanges.start(
      (payload) => changeListener.hear(payload),
      () => changeListener.missed(),
    );
    return () => redisChanges.stop();
  },
  maintenance: ({ clock }) => ({
    realtimeEvents: async (manager) =>
      (
        await manager
          .createQueryBuilder()
          .delete()
          .from(RealtimeEvent)
          .where('created_at < :cutoff', { cutoff: new Date(clock.now().getTime() - EVENTS_KEPT_MS) })
          .execute()
      ).affected ?? 0,
  }),
  http: ({ config }) => ({ afterBody: [subscriptionsOverWebSocketOnly(config.graphqlMaxTokens)] }),
  upgrades: (services, parts) => {
    const { config, logger, notifications, subscriptionHub, changeListener } = services;
    const sockets = new SocketServer(
      parts,
      subscriptionHub,
      {
        sessionCache: services.sessionCache,
        policy: services.policy,
        firewall: services.firewall,
        hits: services.hits,
        clock: services.clock,
        adminNetworks: new AdminNetworks(config.adminAllowedCidrs),
      },
      {
        requireTls: config.wsRequireTls,
        corsOrigins: config.corsOrigins,
        maxTokens: config.graphqlMaxTokens,
        maxSocketsPerAddress: config.wsMaxSocketsPerAddress,
        maxSocketsPerAccount: config.wsMaxSocketsPerAccount,
        maxMessagesPerSecond: config.wsMaxMessagesPerSecond,
        maxMessageBytes: config.wsMaxMessageBytes,
        maxBufferedBytes: config.wsMaxBufferedBytes,
        initTimeoutMs: config.wsInitTimeoutMs,
      },
      logger,
    );
    // A sign-out, a revocation or a suspension closes the session's sockets when it is heard, not at the next change.
    const recheck = (payload: string) => {
      const [kind, id] = payload.split(':');
      for (const connection of sockets.connections()) {
        if ((kind === 'session' && connection.sessionId !== id) || (kind === 'user' && connection.userId !== id)) continue;
        void connection.refresh();
      }
    };
    const unsubscribe = notifications.subscribe(SESSION_CHANNEL, recheck);
    // Changes sent while the listening connection was away are lost, and a restore replaced every row: the apps reconnect and refetch.
    const stopMissed = notifications.onMissed(() => changeListener.missed());
    const plugin = sockets.plugin();
    return {
      plugins: [
        plugin,
        {
          serverWillStart: async () => ({
            drainServer: async () => {
              unsubscribe();
              stopMissed();
            },
          }),
        },
      ],
    };
  },
});
