import os from 'node:os';
import { Notifications } from './db/notifications';
import type { Feature, PlatformServices, Services, Stop } from './feature';
import { PruneTask, scheduleMaintenance } from './maintenance';

/** How often expired throttle rows, challenges, emailed tokens and old audit events are pruned. */
const MAINTENANCE_INTERVAL_MS = 60 * 60 * 1000;

const PLATFORM_NAMES: readonly (keyof PlatformServices)[] = [
  'config',
  'dataSource',
  'databaseUrl',
  'logger',
  'clock',
  'notifications',
  'features',
];

/**
 * Builds each service on first use from the factory of the feature that provides it, so features
 * may be listed in any order and two features may use each other's services (accounts asks mfa
 * for the second factor; mfa opens accounts' sessions) as long as no service needs itself.
 */
class ServiceRegistry {
  private readonly instances = new Map<string, unknown>();
  private readonly providers = new Map<string, { feature: Feature; make: (services: never) => unknown }>();
  private readonly building: string[] = [];

  constructor(
    private readonly platform: PlatformServices,
    features: readonly Feature[],
  ) {
    for (const feature of features) {
      for (const [name, make] of Object.entries(feature.provides ?? {})) {
        const other = this.providers.get(name);
        if (other) throw new Error(`Features "${other.feature.name}" and "${feature.name}" both provide the service "${name}"`);
        this.providers.set(name, { feature, make: make });
      }
    }
  }

  get(name: string): unknown {
    if ((PLATFORM_NAMES as readonly string[]).includes(name)) return this.platform[name as keyof PlatformServices];
    if (this.instances.has(name)) return this.instances.get(name);
    const provider = this.providers.get(name);
    if (!provider) throw new Error(`No feature provides the service "${name}"`);
    if (this.building.includes(name)) throw new Error(`Services need each other in a circle: ${[...this.building, name].join(' → ')}`);
    this.building.push(name);
    try {
      const instance = provider.make(this.viewFor(provider.feature) as never);
      this.instances.set(name, instance);
      return instance;
    } finally {
      this.building.pop();
    }
  }

  /** Every provided service, built now (constructors subscribe to notifications before the listener starts). */
  buildAll(): void {
    for (const name of this.providers.keys()) this.get(name);
  }

  /**
   * What one feature's hooks receive: the platform's services, those it provides and those it
   * names in `needs`, each read through the registry. Nothing else is on the object.
   */
  viewFor(feature: Feature): Services {
    return this.view([...PLATFORM_NAMES, ...Object.keys(feature.provides ?? {}), ...(feature.needs ?? [])]);
  }

  /** Every service (the composition root's and the tests' view). */
  all(): Services {
    return this.view([...PLATFORM_NAMES, ...this.providers.keys()]);
  }

  private view(names: readonly string[]): Services {
    const view = {};
    for (const name of new Set(names)) {
      Object.defineProperty(view, name, { enumerable: true, get: () => this.get(name) });
    }
    return Object.freeze(view) as Services;
  }
}

export interface RunningServices {
  readonly services: Services;
  /** The housekeeping the maintenance job runs, by name (tests run them directly). */
  readonly maintenanceTasks: Readonly<Record<string, PruneTask>>;
  /** The view of the services a feature's hooks receive. */
  readonly servicesFor: (feature: Feature) => Services;
  /** Stops the features' work in reverse order, then the maintenance job and the listener. */
  readonly stop: () => Promise<void>;
}

/**
 * Builds every feature's services, starts listening for other instances' changes, runs each
 * feature's `start` in list order and schedules the maintenance job. Used by servers and by CLI
 * commands that act like the API.
 */
export async function startServices(
  platform: Omit<PlatformServices, 'notifications'>,
  features: readonly Feature[],
): Promise<RunningServices> {
  const notifications = new Notifications({
    url: platform.databaseUrl,
    logger: platform.logger,
    applicationName: `bastion-listen-${os.hostname()}`.slice(0, 63),
  });
  const registry = new ServiceRegistry({ ...platform, notifications }, features);
  const stops: Stop[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop();
    stops.length = 0;
    await notifications.stop();
  };
  try {
    // Subscriptions exist before the listener starts, so no invalidation is missed.
    registry.buildAll();
    await notifications.start();
    for (const feature of features) {
      const stop = await feature.start?.(registry.viewFor(feature));
      if (stop) stops.push(stop);
    }
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }
  const maintenanceTasks: Record<string, PruneTask> = Object.fromEntries(
    features.flatMap((feature) => Object.entries(feature.maintenance?.(registry.viewFor(feature)) ?? {})),
  );
  stops.push(scheduleMaintenance(platform.dataSource, maintenanceTasks, platform.logger, MAINTENANCE_INTERVAL_MS));
  return {
    services: registry.all(),
    maintenanceTasks,
    servicesFor: (feature) => registry.viewFor(feature),
    stop: stopAll,
  };
}
