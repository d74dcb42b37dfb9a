import type { AssuranceRequirement } from '../accounts/assurance-requirement';
import { serviceUnavailable } from '../errors';
import { defineFeature } from '../feature';
import { AccessView } from './access-view';
import { AccessResolver } from './access.resolver';
import { accessRules } from './access.rules';
import { ACCESS_SETTINGS } from './access.settings';
import { AdminNetworks } from './admin-networks';
import { introspectionGate } from './introspection';
import type { ModelAccessSpec } from './model-access';
import { PermissionGrantRow, PolicySeed } from './permission-grant.entity';
import { PolicyService } from './policy.service';
import { UserAdminResolver } from './user-admin.resolver';

/** The services this feature provides. */
export interface AccessServices {
  /** Roles and grants: the policy in force, its changes, and the defaults each model seeds. */
  readonly policy: PolicyService;
  /** What accounts asks after a password sign-in (accounts/assurance-requirement.ts): this feature answers. */
  readonly assuranceRequirement: AssuranceRequirement;
}

declare module '../feature' {
  interface Services extends AccessServices {}

  // Every declaration of Feature names the same type parameters, used or not.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- see above
  interface Feature<N, P> {
    /** Models the permission layer governs (grants name them; their default grants are seeded on first sight). */
    readonly models?: readonly ModelAccessSpec[];
  }
}

/**
 * Roles and per-model, per-field grants: the policy each request decides with, who may see the
 * schema, the networks the admin role may be used from, and the admin API over roles, grants
 * and accounts.
 */
export const accessFeature = defineFeature<keyof AccessServices>()({
  name: 'access',
  settings: ACCESS_SETTINGS,
  entities: [PermissionGrantRow, PolicySeed],
  needs: ['audit', 'sessionCache', 'userDirectory'],
  provides: {
    policy: ({ dataSource, clock, audit, sessionCache, config, notifications }) =>
      new PolicyService(dataSource, clock, audit, sessionCache, config.mfaRequiredFor, notifications),
    assuranceRequirement: ({ policy }) => policy,
  },
  start: async ({ policy, features }) => {
    await policy.registerModels(features.flatMap((feature) => feature.models ?? []));
  },
  resolvers: [AccessResolver, UserAdminResolver],
  rules: accessRules,
  wire: ({ policy, userDirectory }) => [new AccessResolver(policy, userDirectory), new UserAdminResolver(userDirectory)],
  context: ({ policy, config }) => {
    const adminNetworks = new AdminNetworks(config.adminAllowedCidrs);
    return async (_request, context) => {
      let current;
      try {
        current = await policy.current();
      } catch (error) {
        // The policy cannot be loaded (database down): the app should retry, not sign out.
        throw serviceUnavailable(error);
      }
      return { access: new AccessView(current, context.viewer, { adminNetwork: adminNetworks.allows(context.ipAddress) }) };
    };
  },
  graphql: ({ config }) => ({ plugins: [introspectionGate(config.introspection)] }),
});
