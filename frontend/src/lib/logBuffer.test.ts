import { describe, expect, it } from 'vitest';
import { LineBatcher, LogRing, LogView, levelOf, type LogEntry } from './logBuffer';

const entry = (i: number, level = 'INFO'): LogEntry => ({ id: `${1000 + i}-0`, line: `2026-01-01T00:00:00Z ${level} line ${i}`, level: levelOf(` ${level} `) });

describe('LineBatcher', () => {
  it('hands 10,000 lines arriving within one frame to the UI as one batch', () => {
    const frames: (() => void)[] = [];
    const batches: LogEntry[][] = [];
    const batcher = new LineBatcher((b) => batches.push(b), (flush) => frames.push(flush));
    for (let i = 0; i < 10_000; i++) batcher.add(`${i}-0`, `x INFO line ${i}`);
    expect(frames).toHaveLength(1); // one scheduled flush, not one per line
    frames[0]();
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(10_000);
    expect(batches[0][9_999].line).toBe('x INFO line 9999');
    batcher.add('a-0', 'y ERROR boom');
    expect(frames).toHaveLength(2); // the next line schedules the next frame
    frames[1]();
    expect(batches[1][0].level).toBe('ERROR');
  });
});

describe('LogRing', () => {
  it('keeps only the newest lines up to its capacity, in order', () => {
    const ring = new LogRing(100);
    ring.push(Array.from({ length: 250 }, (_, i) => entry(i)));
    expect(ring.size).toBe(100);
    expect(ring.total).toBe(250);
    expect(ring.first).toBe(150);
    expect(ring.toArray().map((e) => e.line.split(' ').at(-1))).toEqual(Array.from({ length: 100 }, (_, i) => String(150 + i)));
  });
});

describe('LogView', () => {
  it('filters new batches incrementally and forgets lines the ring dropped', () => {
    const ring = new LogRing(10);
    const view = new LogView(ring);
    const q = { text: '', levels: new Set(['ERROR'] as const) };
    const first = [entry(0, 'INFO'), entry(1, 'ERROR'), entry(2, 'INFO')];
    ring.push(first);
    expect(view.update(q, null).map((e) => e.n)).toEqual([1]);
    const second = Array.from({ length: 10 }, (_, i) => entry(3 + i, i % 2 ? 'ERROR' : 'WARNING'));
    ring.push(second);
    const shown = view.update(q, second);
    expect(shown.every((e) => e.level === 'ERROR')).toBe(true);
    expect(shown.map((e) => e.n)).toEqual([4, 6, 8, 10, 12]); // line 1 fell out of the ring
    expect(view.update({ text: 'line 12' }, null).map((e) => e.n)).toEqual([12]);
  });

  it('reads passivbot levels (WARN counts as WARNING)', () => {
    expect(levelOf('2026-01-01T00:00:00 WARN [x] y')).toBe('WARNING');
    expect(levelOf('2026-01-01T00:00:00 INFO [x] y')).toBe('INFO');
    expect(levelOf('no level here')).toBeNull();
  });
});
