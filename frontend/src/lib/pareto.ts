/** Pareto members of an optimize result, as the api stores them (`summary.pareto`, see
 * backend/botfleet/profiles/results.py `read_optimize`): `{hash, analysis?, metrics?,
 * config_path}`. `analysis` is passivbot v7's flat `{metric: number}`; `metrics` is v8's, flat
 * or `{stats: {metric: {mean, ...}}}`. */
import { numericMetrics } from './jobs';

export interface Member { hash: string; analysis?: unknown; metrics?: unknown; config_path: string }

/** A member's numeric metrics, flattened (`stats.X.mean` becomes `X`). */
export function memberMetrics(m: Member): Record<string, number> {
  const flat = { ...numericMetrics(m.metrics), ...numericMetrics(m.analysis) };
  const nested = (m.metrics as { stats?: Record<string, { mean?: number }> } | undefined)?.stats;
  if (nested) for (const [k, v] of Object.entries(nested)) if (typeof v?.mean === 'number') flat[k] = v.mean;
  return flat;
}

/** The Pareto members of a job's result summary; null when it has none (a backtest, or an
 * optimize that has not finished). */
export function paretoOf(summary: unknown): Member[] | null {
  const p = (summary as { pareto?: unknown } | null | undefined)?.pareto;
  return Array.isArray(p) ? (p as Member[]) : null;
}

/** Sorted metric names found in any of the members' metrics. */
export function metricKeys(metrics: readonly Record<string, number>[]): string[] {
  return [...new Set(metrics.flatMap((m) => Object.keys(m)))].sort();
}

/** Default axes among `keys`: a gain on x (`adg`, `gain`), a loss on y (`drawdown`, `loss`). */
export function defaultAxes(keys: readonly string[]): [string, string] {
  const x = keys.find((k) => /adg|gain/.test(k)) ?? keys[0] ?? '';
  const y = keys.find((k) => /drawdown|loss/.test(k) && k !== x) ?? keys.find((k) => k !== x) ?? x;
  return [x, y];
}

/** Scatter points `{x, y, hash}` of the members that have both metrics. */
export function points(rows: readonly { m: Member; x: Record<string, number> }[], xk: string, yk: string): { x: number; y: number; hash: string }[] {
  return rows.filter((r) => r.x[xk] !== undefined && r.x[yk] !== undefined).map((r) => ({ x: r.x[xk], y: r.x[yk], hash: r.m.hash }));
}
