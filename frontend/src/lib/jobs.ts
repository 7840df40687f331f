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

/** The balance/equity series of a backtest (passivbot's `balance_and_equity.csv.gz`,
 * INTERFACE.md "Output"): the file among `artifacts`, preferring the one in `resultsDir`
 * (the summary's `results_dir`, `combined` first). Null when the job has none. */
export function equityArtifact(artifacts: readonly string[] | undefined, resultsDir?: unknown): string | null {
  const all = (artifacts ?? []).filter((a) => /(^|\/)balance_and_equity\.csv(\.gz)?$/.test(a));
  if (typeof resultsDir === 'string') {
    const mine = all.find((a) => a.startsWith(resultsDir.replace(/\/$/, '') + '/'));
    if (mine) return mine;
  }
  return all[0] ?? null;
}

export interface Series {
  /** The x column's name (passivbot: the unnamed index, minutes from the start). */
  x: string;
  /** Names of the numeric columns (`balance`, `equity`, ...). */
  columns: string[];
  /** Rows `{ [x]: number, [column]: number }`, at most `maxPoints` of them. */
  rows: Record<string, number>[];
  /** Data rows in the file. */
  total: number;
}

/** Parse a CSV whose first column is the index (pandas' `to_csv`) and whose other columns are
 * numbers; keep at most `maxPoints` rows, evenly spaced, the first and last always kept.
 * Columns with no numeric value are left out. */
export function parseSeries(text: string, maxPoints = 1000): Series {
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
  const x = header[0] || 'minute';
  const names = header.slice(1);
  const total = lines.length;
  const step = Math.max(1, (total - 1) / Math.max(1, maxPoints - 1));
  const picked: number[] = [];
  for (let k = 0; k < maxPoints && Math.round(k * step) < total; k++) picked.push(Math.round(k * step));
  if (total && picked[picked.length - 1] !== total - 1) picked[picked.length - 1] = total - 1;
  const numeric = new Set<string>();
  const rows = picked.map((i) => {
    const cells = lines[i].split(',');
    const row: Record<string, number> = { [x]: Number(cells[0]) };
    names.forEach((n, c) => {
      const v = Number(cells[c + 1]);
      if (cells[c + 1] !== undefined && cells[c + 1] !== '' && Number.isFinite(v)) {
        row[n] = v;
        numeric.add(n);
      }
    });
    return row;
  });
  return { x, columns: names.filter((n) => numeric.has(n)), rows, total };
}

/** Text of an artifact that may be gzipped (`.gz`: decompressed here with the browser's
 * DecompressionStream, unless the server already sent it decoded). */
export async function artifactText(url: string): Promise<string> {
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return new TextDecoder().decode(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}
