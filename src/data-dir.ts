import fs from 'node:fs';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Creates Bastion's data folder (BASTION_DATA_DIR) if missing, the one way every feature does.
 * Private to us (0700); when we are root, others may pass through but not list it (0711), so the
 * `postgres` account can reach its cluster inside while keys.json (0600) stays ours alone.
 */
export function ensureDataDir(dataDir: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: isRoot() ? 0o711 : 0o700 });
}
