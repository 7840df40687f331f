import { describe, expect, it } from 'vitest';
import { mergePoints, nextSince, toRows, type MetricsPoint } from './hostMetrics';

const at = (s: number, cpu = 10): MetricsPoint => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString(), cpu_percent: cpu,
  memory_used: 2 * 2 ** 30, memory_total: 8 * 2 ** 30, disk_used: 30, disk_total: 120, load1: 0.5, load5: 0.4, load15: 0.3,
});
const now = Date.UTC(2026, 0, 1, 0, 1, 0);

describe('mergePoints', () => {
  it('appends only samples newer than the newest held one (a repeated poll adds nothing)', () => {
    const held = mergePoints([], [at(1), at(2)], 3_600_000, now);
    const again = mergePoints(held, [at(2), at(3)], 3_600_000, now);
    expect(again.map((p) => p.time)).toEqual([at(1), at(2), at(3)].map((p) => p.time));
    expect(mergePoints(again, [at(3)], 3_600_000, now)).toBe(again); // unchanged: same array
  });
  it('drops samples older than the window', () => {
    const held = mergePoints([], [at(1), at(30), at(50)], 20_000, now); // window: the last 20 s
    expect(held.map((p) => p.time)).toEqual([at(50).time]);
  });
});

describe('nextSince', () => {
  it('asks from the newest held sample, or from the window start when empty', () => {
    expect(nextSince([at(1), at(7)], 60_000, now)).toBe(at(7).time);
    expect(nextSince([], 60_000, now)).toBe(new Date(now - 60_000).toISOString());
  });
});

describe('toRows', () => {
  it('gives memory and disk as percentages of their totals', () => {
    const [row] = toRows([at(5, 42.26)]);
    expect(row).toMatchObject({ cpu: 42.3, memory: 25, disk: 25, load1: 0.5, load15: 0.3 });
    expect(row.t).toBe(Date.parse(at(5).time));
  });
});
