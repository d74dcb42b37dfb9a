/**
 * What names a stored content, as SQL conditions on `file_contents c`: one wording for the
 * maintenance job, key rotation, store migration, backups and the self-audit, so they agree on
 * which contents are files, which are uploads still arriving, and which are orphans.
 */

/** Named by a file or a variant. */
export const NAMED_BY_A_FILE =
  '(EXISTS (SELECT 1 FROM files f WHERE f.content_id = c.id) OR EXISTS (SELECT 1 FROM file_variants v WHERE v.content_id = c.id))';

/** An upload's, still arriving: its chunks are still being written. */
export const STILL_ARRIVING = 'EXISTS (SELECT 1 FROM uploads u WHERE u.content_id = c.id)';

/** A file's (or a variant's) and no upload's: every chunk written, its SHA-256 known. */
export const SETTLED = `${NAMED_BY_A_FILE} AND NOT ${STILL_ARRIVING}`;

/** Named by nothing: left by a process that stopped between storing a content and attaching it. */
export const UNREFERENCED = `NOT ${NAMED_BY_A_FILE} AND NOT ${STILL_ARRIVING}`;
