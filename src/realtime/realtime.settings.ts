import type { SettingValues, SettingsTable } from '../config';
import { boolean, integer, spec } from '../config/settings';

const specs = {
  wsRequireTls: spec<boolean>({
    env: 'BASTION_WS_REQUIRE_TLS',
    description:
      'Accept WebSockets only over TLS (wss://): our own certificate, or a TRUST_PROXY proxy that says X-Forwarded-Proto: https. ' +
      'A plain ws:// upgrade gets HTTP 426.',
    fallback: (nodeEnv) => nodeEnv === 'production',
    defaultText: 'true in production; false otherwise',
    parse: boolean,
  }),
  wsMaxSocketsPerAddress: spec<number>({
    env: 'BASTION_WS_MAX_SOCKETS_PER_ADDRESS',
    description: 'Open WebSockets one client address may hold on one instance; the next upgrade gets HTTP 429.',
    fallback: () => 50,
    defaultText: '50',
    parse: integer(1, 100_000),
  }),
  wsMaxSocketsPerAccount: spec<number>({
    env: 'BASTION_WS_MAX_SOCKETS_PER_ACCOUNT',
    description: 'Open WebSockets one account may hold on one instance; the next is closed with 4429 at connection_init.',
    fallback: () => 10,
    defaultText: '10',
    parse: integer(1, 10_000),
  }),
  wsMaxSubscriptions: spec<number>({
    env: 'BASTION_WS_MAX_SUBSCRIPTIONS',
    description: 'Subscriptions one WebSocket may run at once; the next subscribe gets a RATE_LIMITED error.',
    fallback: () => 20,
    defaultText: '20',
    parse: integer(1, 1_000),
  }),
  wsMaxMessagesPerSecond: spec<number>({
    env: 'BASTION_WS_MAX_MESSAGES_PER_SECOND',
    description: 'Messages a client may send on one WebSocket per second; past it the socket is closed with 4429.',
    fallback: () => 20,
    defaultText: '20',
    parse: integer(1, 10_000),
  }),
  wsMaxMessageBytes: spec<number>({
    env: 'BASTION_WS_MAX_MESSAGE_BYTES',
    description: 'Largest message a client may send on a WebSocket; a larger one closes it with 1009.',
    fallback: () => 64 * 1024,
    defaultText: '65536',
    parse: integer(1024, 10 * 1024 * 1024),
  }),
  wsMaxBufferedBytes: spec<number>({
    env: 'BASTION_WS_MAX_BUFFERED_BYTES',
    description: 'Bytes waiting to be sent to a client that does not read; past it the socket is closed with 1013.',
    fallback: () => 1024 * 1024,
    defaultText: '1048576',
    parse: integer(16 * 1024, 256 * 1024 * 1024),
  }),
  wsInitTimeoutMs: spec<number>({
    env: 'BASTION_WS_INIT_TIMEOUT_MS',
    description: 'How long a new WebSocket may wait before sending connection_init; then it is closed with 4408.',
    fallback: () => 5_000,
    defaultText: '5000',
    parse: integer(100, 60_000),
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** The WebSocket limits. */
export const REALTIME_SETTINGS: SettingsTable = { specs };
