import type { Measurement } from './measure';

export interface ReportRow {
  readonly scenario: string;
  readonly measurement: Measurement;
  /** The floor this row is a ratio of (a floor's own row names itself). */
  readonly floor: string;
  /** Requests per second of that floor, measured in the same run. */
  readonly floorRequestsPerSecond: number;
  /** The scenario's design goal for the ratio, if it has one (a goal, not a gate). */
  readonly floorGoal?: number;
}

const HEADERS = ['scenario', 'req/s (mean)', 'p50 ms', 'p99 ms', 'errors', 'ratio', 'of', 'goal'] as const;

/** The cells every table shows for one measurement: req/s, p50, p99, errors. */
function measurementCells(m: Measurement): string[] {
  return [m.requestsPerSecond.toFixed(1), m.p50Ms.toFixed(1), m.p99Ms.toFixed(1), String(m.failures)];
}

/** `textColumns`: how many leading columns are names rather than numbers; `trailingText`: other columns of names. */
export function formatColumns(
  headers: readonly string[],
  cells: readonly (readonly string[])[],
  textColumns = 1,
  trailingText: readonly number[] = [],
): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((row) => row[column].length)));
  // Names read best left-aligned, numbers right-aligned so their digits line up.
  const isText = (column: number) => column < textColumns || trailingText.includes(column);
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (isText(column) ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(' | ');
  const rule = widths.map((width) => '-'.repeat(width)).join('-|-');
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

export function formatTable(rows: readonly ReportRow[]): string {
  const cells = rows.map(({ scenario, measurement: m, floor, floorRequestsPerSecond, floorGoal }) => {
    const ratio = floorRequestsPerSecond > 0 ? m.requestsPerSecond / floorRequestsPerSecond : undefined;
    const goal =
      floorGoal === undefined ? '' : `≥ ${floorGoal.toFixed(2)}×: ${ratio !== undefined && ratio >= floorGoal ? 'met' : 'not met'}`;
    return [scenario, ...measurementCells(m), ratio === undefined ? 'n/a' : `${ratio.toFixed(2)}×`, floor, goal];
  });
  return formatColumns(HEADERS, cells, 1, [6, 7]);
}

/** One request measured two ways that differ by one thing (the permission layer; encrypted columns). */
export interface CostRow {
  /** What was asked, e.g. "100 rows". */
  readonly label: string;
  readonly base: Measurement;
  readonly measured: Measurement;
  /** The cost the issue aims for (a goal, not a gate). */
  readonly goal: number;
}

/**
 * Each request as a row for the base and a row for the measured way; the cost (req/s base ÷
 * measured, i.e. time measured ÷ base) on the second, by its goal. `names`: the column that tells
 * the two apart, and what each row is called in it.
 */
export function formatCost(
  rows: readonly CostRow[],
  names: { readonly column: string; readonly base: string; readonly measured: string },
): string {
  const cells = rows.flatMap(({ label, base, measured, goal }) => {
    const cost = measured.requestsPerSecond > 0 ? base.requestsPerSecond / measured.requestsPerSecond : undefined;
    return [
      [label, names.base, ...measurementCells(base), ''],
      [
        label,
        names.measured,
        ...measurementCells(measured),
        cost === undefined ? 'n/a' : `${cost.toFixed(2)}× (goal ≤ ${goal}×: ${cost <= goal ? 'met' : 'not met'})`,
      ],
    ];
  });
  return formatColumns(['list', names.column, 'req/s (mean)', 'p50 ms', 'p99 ms', 'errors', 'cost'], cells, 2);
}

/** "me vs serverInfo: 0.85× the throughput", or undefined when either row did not run. */
export function formatRelative(rows: readonly ReportRow[], scenario: string, baseline: string): string | undefined {
  const requestsPerSecond = (name: string) => rows.find((row) => row.scenario === name)?.measurement.requestsPerSecond;
  const numerator = requestsPerSecond(scenario);
  const denominator = requestsPerSecond(baseline);
  if (numerator === undefined || !denominator) return undefined;
  return `${scenario} vs ${baseline}: ${(numerator / denominator).toFixed(2)}× the throughput`;
}

/** One configuration of the firewall, measured on the same request as the others. */
export interface FirewallCostRow {
  /** Short name, e.g. "off". */
  readonly label: string;
  /** What it has, e.g. "1,000 IP rules + rate limits". */
  readonly detail: string;
  readonly measurement: Measurement;
  /** Part of the baseline: the cost of every other row is against the mean req/s of these. */
  readonly baseline?: boolean;
  /** The cost the issue aims for, if this row is the one it is about (a goal, not a gate). */
  readonly goal?: number;
}

/** The mean req/s of the baseline rows (0 when there is none). */
function firewallBaseline(rows: readonly FirewallCostRow[]): number {
  const baseline = rows.filter((row) => row.baseline);
  return baseline.length === 0 ? 0 : baseline.reduce((sum, row) => sum + row.measurement.requestsPerSecond, 0) / baseline.length;
}

/** What `row` costs: baseline req/s ÷ its own (2.00× = half the throughput); undefined when either is 0. */
export function firewallCost(rows: readonly FirewallCostRow[], row: FirewallCostRow): number | undefined {
  const baseline = firewallBaseline(rows);
  return baseline > 0 && row.measurement.requestsPerSecond > 0 ? baseline / row.measurement.requestsPerSecond : undefined;
}

const FIREWALL_HEADERS = ['firewall', 'with', 'req/s (mean)', 'p50 ms', 'p99 ms', 'errors', 'cost / off'] as const;

/** Each configuration as a row; the baseline rows without a cost, the others with theirs, by the goal if they have one. */
export function formatFirewallCost(rows: readonly FirewallCostRow[]): string {
  const cells = rows.map((row) => {
    const cost = firewallCost(rows, row);
    const text = row.baseline
      ? ''
      : (cost === undefined ? 'n/a' : `${cost.toFixed(2)}×`) + (row.goal === undefined ? '' : ` (goal ≤ ${row.goal}×)`);
    return [row.label, row.detail, ...measurementCells(row.measurement), text];
  });
  return formatColumns(FIREWALL_HEADERS, cells, 2);
}

/** One run of audit appends: so many writers, each appending in a transaction of its own. */
export interface AuditRunRow {
  readonly writers: number;
  readonly eventsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Mean ms per append in each step, in order. */
  readonly phases: {
    readonly beginMs: number;
    readonly lockMs: number;
    readonly selectMs: number;
    readonly hashMs: number;
    readonly insertMs: number;
    readonly commitMs: number;
  };
  /** The events/s the issue aims for, if this row is the one it is about (a goal, not a gate). */
  readonly goal?: number;
}

const AUDIT_HEADERS = ['writers', 'events/s', 'p50 ms', 'p99 ms', 'errors', 'goal'] as const;
const AUDIT_PHASE_HEADERS = ['writers', 'BEGIN', 'lock (wait)', 'SELECT last hash', 'checks + hash', 'INSERT', 'COMMIT'] as const;

/** The rate and latency per append of each run, the goal's row marked met or not. */
export function formatAuditRuns(rows: readonly AuditRunRow[]): string {
  const cells = rows.map((row) => [
    String(row.writers),
    row.eventsPerSecond.toFixed(1),
    row.p50Ms.toFixed(2),
    row.p99Ms.toFixed(2),
    String(row.errors),
    row.goal === undefined ? '' : `≥ ${row.goal.toLocaleString('en-US')}/s: ${row.eventsPerSecond >= row.goal ? 'met' : 'not met'}`,
  ]);
  return formatColumns(AUDIT_HEADERS, cells);
}

/** Where an append's time goes, mean ms per append in each step (they add up to the mean latency). */
export function formatAuditPhases(rows: readonly AuditRunRow[]): string {
  const cells = rows.map(({ writers, phases: p }) => [
    String(writers),
    ...[p.beginMs, p.lockMs, p.selectMs, p.hashMs, p.insertMs, p.commitMs].map((ms) => ms.toFixed(3)),
  ]);
  return formatColumns(AUDIT_PHASE_HEADERS, cells);
}

/** One backup operation: the seconds of each of its runs and the rates of the best one. */
export interface BackupRunRow {
  readonly operation: string;
  /** What the operation does, in a few words. */
  readonly detail: string;
  readonly runSeconds: readonly number[];
  /** CPU time of the bench process during the fastest run (its main thread and zlib's threads). */
  readonly cpuSeconds: number;
  /** MB (10⁶ bytes) of table data per second. */
  readonly megabytesPerSecond: number;
  readonly rowsPerSecond: number;
  /** The floor's MB/s, which the row is compared with; absent on the floor's own row. */
  readonly floorMegabytesPerSecond?: number;
  /** The MB/s the design aims for, if this row is the one it is about (a goal, not a gate). */
  readonly goalMegabytesPerSecond?: number;
}

const BACKUP_HEADERS = ['operation', 'what it does', 'best s', 'node CPU s', 'MB/s', 'rows/s', 'vs floor', 'runs s', 'goal'] as const;

/** Each operation at its best run, its MB/s as a ratio to the floor's, the goal's row marked met or not. */
export function formatBackupRuns(rows: readonly BackupRunRow[]): string {
  const cells = rows.map((row) => [
    row.operation,
    row.detail,
    Math.min(...row.runSeconds).toFixed(2),
    row.cpuSeconds.toFixed(2),
    row.megabytesPerSecond.toFixed(1),
    Math.round(row.rowsPerSecond).toLocaleString('en-US'),
    row.floorMegabytesPerSecond ? `${(row.megabytesPerSecond / row.floorMegabytesPerSecond).toFixed(2)}×` : '',
    row.runSeconds.map((seconds) => seconds.toFixed(2)).join(', '),
    row.goalMegabytesPerSecond === undefined
      ? ''
      : `≥ ${row.goalMegabytesPerSecond} MB/s: ${row.megabytesPerSecond >= row.goalMegabytesPerSecond ? 'met' : 'not met'}`,
  ]);
  return formatColumns(BACKUP_HEADERS, cells, 2);
}
