import { describe, expect, it } from 'vitest';
import { LineBatcher, LogRing, LogView, indexAtTime, levelOf, lineWindow, type LogEntry } from './logBuffer';

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

describe('LogView scroll-back', () => {
  const page = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ id: `${1000 + from + i}-0`, line: `old ${i % 2 ? 'ERROR' : 'INFO'} line ${from + i}` }));

  it('puts older pages in front of the streamed lines, in stream order, through the filter', () => {
    const ring = new LogRing(100);
    const view = new LogView(ring);
    ring.push([entry(10), entry(11)]);
    view.update({}, null);
    expect(view.oldestId).toBe('1010-0');
    view.prepend(page(5, 10), {});
    expect(view.lines.map((e) => e.id)).toEqual(['1005-0', '1006-0', '1007-0', '1008-0', '1009-0', '1010-0', '1011-0']);
    expect(view.oldestId).toBe('1005-0');
    view.prepend(page(0, 6), {}); // overlaps 1005: only the lines older than what is held
    expect(view.lines.map((e) => e.id).slice(0, 6)).toEqual(['1000-0', '1001-0', '1002-0', '1003-0', '1004-0', '1005-0']);
    expect(view.lines.map((e) => e.n)).toEqual([-10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1]);
    // a level filter applies to the history too, and new batches still append behind it
    expect(view.update({ levels: new Set(['ERROR'] as const) }, null).map((e) => e.id)).toEqual(['1001-0', '1003-0', '1006-0', '1008-0']);
    const batch = [entry(12, 'ERROR')];
    ring.push(batch);
    expect(view.update({ levels: new Set(['ERROR'] as const) }, batch).at(-1)!.id).toBe('1012-0');
  });

  it('forgets the history once the ring drops lines (no hole in the middle)', () => {
    const ring = new LogRing(3);
    const view = new LogView(ring);
    ring.push([entry(10), entry(11)]);
    view.update({}, null);
    view.prepend(page(0, 10), {});
    const batch = [entry(12), entry(13)];
    ring.push(batch); // capacity 3: line 10 is dropped
    expect(view.update({}, batch).map((e) => e.id)).toEqual(['1011-0', '1012-0', '1013-0']);
    expect(view.older).toEqual([]);
  });
});

describe('indexAtTime', () => {
  it('finds the first line at or after a time by its stream id', () => {
    const lines = [entry(0), entry(5), entry(9)];
    expect(indexAtTime(lines, new Date(1004))).toBe(1);
    expect(indexAtTime(lines, new Date(1000))).toBe(0);
    expect(indexAtTime(lines, new Date(2000))).toBe(-1);
  });
});

describe('lineWindow', () => {
  it('draws the lines in view plus the overscan, clamped to the list', () => {
    expect(lineWindow(100_000, 0, 180, 18, 10)).toEqual([0, 20]); // 10 in view + 10 below
    expect(lineWindow(100_000, 18 * 500, 180, 18, 10)).toEqual([490, 520]);
    expect(lineWindow(100_000, 18 * 100_000 - 180, 180, 18, 10)).toEqual([99_980, 100_000]); // the end (following)
    expect(lineWindow(5, 0, 180, 18, 10)).toEqual([0, 5]);
    expect(lineWindow(0, 0, 180, 18, 10)).toEqual([0, 0]);
  });
  it('costs the same for 100,000 lines as for 100 (no per-line work)', () => {
    expect(lineWindow(100, 0, 360, 18, 0)).toEqual(lineWindow(100_000, 0, 360, 18, 0));
  });
});
