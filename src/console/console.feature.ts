import { AdminNetworks } from '../access/admin-networks';
import { defineFeature } from '../feature';
import { ACCOUNT_ASSETS_PATH, ACCOUNT_PAGES, CONSOLE_BUILD_DIR, accountRoutes, consoleMounts } from './console-pages';
import { CONSOLE_SETTINGS } from './console.settings';

/**
 * The admin console at /console and the account pages for the links in emails: static files
 * built into the package (no CDN, no font service, no telemetry) under a strict CSP. The pages
 * call the public GraphQL API at /graphql, as any client does: they have no endpoint of their own.
 * The firewall's IP rules apply as to every request; ADMIN_ALLOWED_CIDRS limits the console.
 */
export const consoleFeature = defineFeature()({
  name: 'console',
  settings: CONSOLE_SETTINGS,
  http: ({ config }) => {
    if (!config.console) return {};
    const networks = new AdminNetworks(config.adminAllowedCidrs);
    const account = accountRoutes(CONSOLE_BUILD_DIR);
    return {
      mounts: {
        ...consoleMounts(CONSOLE_BUILD_DIR, (req) => networks.allows(req.clientIp || null)),
        [ACCOUNT_ASSETS_PATH]: account.assets,
        ...Object.fromEntries(ACCOUNT_PAGES.map((page) => [page, account.page])),
      },
    };
  },
});
