import type { Measurement } from './measure';

export interface ReportRow {
  readonly scenario: string;
  readonly measurement: Measurement;
  /** Requests per second of the floor, which every row is compared with. */
  readonly floorRequestsPerSecond: number;
}

const HEADERS = ['scenario', 'req/s (mean)', 'p50 ms', 'p99 ms', 'errors', 'ratio'] as const;

export function formatTable(rows: readonly ReportRow[]): string {
  const cells = rows.map(({ scenario, measurement: m, floorRequestsPerSecond }) => [
    scenario,
    m.requestsPerSecond.toFixed(1),
    m.p50Ms.toFixed(1),
    m.p99Ms.toFixed(1),
    String(m.failures),
    floorRequestsPerSecond > 0 ? `${(m.requestsPerSecond / floorRequestsPerSecond).toFixed(2)}×` : 'n/a',
  ]);
  const widths = HEADERS.map((header, column) => Math.max(header.length, ...cells.map((row) => row[column].length)));
  // The scenario name reads best left-aligned, numbers right-aligned so their digits line up.
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(' | ');
  const rule = widths.map((width) => '-'.repeat(width)).join('-|-');
  return [line(HEADERS), rule, ...cells.map(line)].join('\n');
}

/** "me vs serverInfo: 0.85× the throughput", or undefined when either row did not run. */
export function formatRelative(rows: readonly ReportRow[], scenario: string, baseline: string): string | undefined {
  const requestsPerSecond = (name: string) => rows.find((row) => row.scenario === name)?.measurement.requestsPerSecond;
  const numerator = requestsPerSecond(scenario);
  const denominator = requestsPerSecond(baseline);
  if (numerator === undefined || !denominator) return undefined;
  return `${scenario} vs ${baseline}: ${(numerator / denominator).toFixed(2)}× the throughput`;
}
