/** Job helpers: form fields to passivbot's dotted overrides, ETA, numeric metrics. */
import type { Job } from '../api/types';

export interface JobForm { start_date: string; end_date: string; exchanges: string; iters: string; n_cpus: string }

/** Form fields → overrides (`backtest.start_date`, `backtest.end_date`, `backtest.exchanges`,
 * `optimize.iters`, `optimize.n_cpus`); empty fields are left out. */
export function overridesOf(kind: string, f: JobForm): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (f.start_date) o['backtest.start_date'] = f.start_date;
  if (f.end_date) o['backtest.end_date'] = f.end_date;
  const ex = f.exchanges.split(/[,\s]+/).filter(Boolean);
  if (ex.length) o['backtest.exchanges'] = ex;
  if (kind === 'optimize' && f.iters) o['optimize.iters'] = Number(f.iters);
  if (f.n_cpus) o['optimize.n_cpus'] = Number(f.n_cpus);
  return o;
}

/** Seconds left, from the progress so far (null when unknown). */
export function etaSeconds(job: Job, now = Date.now()): number | null {
  if (job.status !== 'running' || !job.started_at || job.progress <= 0.001 || job.progress >= 1) return null;
  const elapsed = (now - new Date(job.started_at).getTime()) / 1000;
  return (elapsed * (1 - job.progress)) / job.progress;
}

/** Flat numeric metrics of a result summary (`adg`, `sharpe_ratio`, ...). */
export function numericMetrics(summary: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (summary && typeof summary === 'object') {
    for (const [k, v] of Object.entries(summary as Record<string, unknown>)) {
      if (typeof v === 'number' && isFinite(v)) out[k] = v;
    }
  }
  return out;
}

export function formatNumber(v: number | undefined): string {
  if (v === undefined) return '—';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1000 || Math.abs(v) < 0.001 ? v.toExponential(3) : v.toFixed(4);
}
