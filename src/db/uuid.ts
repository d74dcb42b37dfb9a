const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of sessions and users are UUIDs; anything else names nothing (and would be an SQL type error). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
