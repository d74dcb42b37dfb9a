/**
 * A bigint column read as a JavaScript number (pg returns bigint as text): for sizes and counts
 * that stay far below 2^53. NULL reads as 0.
 */
export const bigintAsNumber = { to: (value: number) => value, from: (value: string | null) => (value === null ? 0 : Number(value)) };
