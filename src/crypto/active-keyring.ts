import type { Keyring } from './keyring';

/**
 * The keyring that encrypted-column transformers use. TypeORM builds transformers when entity
 * classes are decorated, before any configuration exists, so they reach the keyring through this
 * one slot, filled at boot (server, CLI, tests) before the first query.
 */
let active: Keyring | undefined;

export function installKeyring(keyring: Keyring): void {
  active = keyring;
}

export function activeKeyring(): Keyring {
  if (!active) throw new Error('No keyring installed: call installKeyring() at boot before touching encrypted columns');
  return active;
}
