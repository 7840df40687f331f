/** Host metrics history for the host page's charts: samples from
 * `GET /api/v1/hosts/{id}/metrics` merged as they arrive (polled with `since` = the newest
 * time held) and turned into chart rows (percentages, load averages). */
import type { components } from '../api/schema';

export type MetricsPoint = components['schemas']['MetricsPoint'];

export interface MetricsRow {
  /** Milliseconds since the epoch (the chart's x). */
  t: number;
  cpu: number;
  memory: number;
  disk: number;
  load1: number;
  load5: number;
  load15: number;
}

/** Time windows the page offers (label → milliseconds). */
export const WINDOWS: Record<string, number> = { '15 min': 15 * 60_000, '1 h': 3_600_000, '6 h': 6 * 3_600_000, '24 h': 24 * 3_600_000 };

/** `held` plus the `incoming` samples newer than the newest held one, without those older
 * than `windowMs` before `now` (milliseconds). Returns `held` itself when nothing changed. */
export function mergePoints(held: readonly MetricsPoint[], incoming: readonly MetricsPoint[], windowMs: number, now = Date.now()): readonly MetricsPoint[] {
  const newest = held.length ? Date.parse(held[held.length - 1].time) : -Infinity;
  const fresh = incoming.filter((p) => Date.parse(p.time) > newest);
  const from = now - windowMs;
  let drop = 0;
  while (drop < held.length && Date.parse(held[drop].time) < from) drop++;
  if (!fresh.length && !drop) return held;
  return held.slice(drop).concat(fresh.filter((p) => Date.parse(p.time) >= from));
}

/** The `since` to ask for next: the newest held time, or the window's start when none. */
export function nextSince(held: readonly MetricsPoint[], windowMs: number, now = Date.now()): string {
  return held.length ? held[held.length - 1].time : new Date(now - windowMs).toISOString();
}

const pct = (used: number, total: number) => (total > 0 ? Math.round((1000 * used) / total) / 10 : 0);

/** Chart rows: CPU, memory and disk in percent (one decimal), load averages as sent. */
export function toRows(points: readonly MetricsPoint[]): MetricsRow[] {
  return points.map((p) => ({
    t: Date.parse(p.time),
    cpu: Math.round(p.cpu_percent * 10) / 10,
    memory: pct(p.memory_used, p.memory_total),
    disk: pct(p.disk_used, p.disk_total),
    load1: p.load1,
    load5: p.load5,
    load15: p.load15,
  }));
}
