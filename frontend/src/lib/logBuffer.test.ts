import { describe, expect, it } from 'vitest';
import { LineBatcher, LogRing, LogView, levelOf, lineTime, lineWindow, toBatch, type LineBatch } from './logBuffer';

describe('LineBatcher', () => {
  it('hands 10,000 lines arriving within one frame to the UI as one batch', () => {
    const frames: (() => void)[] = [];
    const batches: LineBatch[] = [];
    const batcher = new LineBatcher((b) => batches.push(b), (flush) => frames.push(flush));
    for (let i = 0; i < 10_000; i++) batcher.add(`${i}-0`, `x INFO line ${i}`);
    expect(frames).toHaveLength(1); // one scheduled flush, not one per line
    frames[0]();
    expect(batches).toHaveLength(1);
    expect(batches[0].ids).toHaveLength(10_000);
    expect(batches[0].lines[9_999]).toBe('x INFO line 9999');
    expect(batches[0].levels[9_999]).toBe(2); // INFO
    batcher.add('a-0', 'y ERROR boom');
    expect(frames).toHaveLength(2); // the next line schedules the next frame
    frames[1]();
    expect(batches[1].levels[0]).toBe(4); // ERROR
    batcher.addBatch(toBatch([['b-0', 'z WARN w'], ['c-0', 'plain']]));
    frames[2]();
    expect(Array.from(batches[2].levels)).toEqual([3, 0]);
  });
});

const batchOf = (from: number, to: number, level: (i: number) => string = () => 'INFO') =>
  toBatch(Array.from({ length: to - from }, (_, k) => [`${1000 + from + k}-0`, `2026-01-01T00:00:00Z ${level(from + k)} line ${from + k}`] as const));
const shownOf = (view: LogView) => Array.from({ length: view.length }, (_, i) => view.at(i));

describe('LogRing', () => {
  it('keeps only the newest lines up to its capacity, in order, overwriting in place', () => {
    const ring = new LogRing(100);
    ring.push(batchOf(0, 250));
    expect(ring.size).toBe(100);
    expect(ring.total).toBe(250);
    expect(ring.first).toBe(150);
    expect(Array.from({ length: 100 }, (_, i) => ring.line(150 + i).split(' ').at(-1))).toEqual(Array.from({ length: 100 }, (_, i) => String(150 + i)));
    expect(ring.id(249)).toBe('1249-0');
    expect(ring.level(249)).toBe(2); // INFO
  });
});

describe('LogView', () => {
  it('filters new lines incrementally and forgets lines the ring dropped', () => {
    const ring = new LogRing(10);
    const view = new LogView(ring);
    const q = { text: '', levels: new Set(['ERROR'] as const) };
    ring.push(batchOf(0, 3, (i) => (i === 1 ? 'ERROR' : 'INFO')));
    view.setQuery(q);
    expect(shownOf(view).map((e) => e.n)).toEqual([1]);
    const v = view.version;
    ring.push(batchOf(3, 13, (i) => (i % 2 ? 'WARNING' : 'ERROR')));
    expect(view.sync()).toBe(true);
    expect(view.version).toBeGreaterThan(v);
    expect(view.sync()).toBe(false); // nothing new: no new version
    const shown = shownOf(view);
    expect(shown.every((e) => e.level === 'ERROR')).toBe(true);
    expect(shown.map((e) => e.n)).toEqual([4, 6, 8, 10, 12]); // line 1 fell out of the ring
    expect(view.indexOfN(7)).toBe(2);
    view.setQuery({ text: 'LINE 12' });
    expect(shownOf(view).map((e) => e.n)).toEqual([12]);
    view.setQuery({});
    expect(view.length).toBe(10);
    expect(view.at(0)).toEqual({ id: '1003-0', line: '2026-01-01T00:00:00Z WARNING line 3', level: 'WARNING', n: 3 });
    expect(view.texts().at(-1)).toBe('2026-01-01T00:00:00Z ERROR line 12');
  });

  it('keeps a filtered index across many wraps of the ring (grows, trims, slides back)', () => {
    const ring = new LogRing(3000); // 2,000 matches held: past the index's first 1,024 slots
    const view = new LogView(ring);
    view.setQuery({ levels: new Set(['ERROR'] as const) });
    for (let b = 0; b < 50; b++) {
      ring.push(batchOf(b * 500, (b + 1) * 500, (i) => (i % 3 ? 'ERROR' : 'INFO')));
      view.sync();
    }
    const expected = Array.from({ length: 3000 }, (_, k) => 22_000 + k).filter((i) => i % 3 !== 0);
    expect(shownOf(view).map((e) => e.n)).toEqual(expected);
    view.setQuery({});
    view.setQuery({ levels: new Set(['ERROR'] as const) }); // rebuilt from the ring: the same
    expect(shownOf(view).map((e) => e.n)).toEqual(expected);
  });

  it('reads passivbot levels (WARN counts as WARNING)', () => {
    expect(levelOf('2026-01-01T00:00:00 WARN [x] y')).toBe('WARNING');
    expect(levelOf('2026-01-01T00:00:00 INFO [x] y')).toBe('INFO');
    expect(levelOf('no level here')).toBeNull();
  });
});

describe('LogView scroll-back', () => {
  const page = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ id: `${1000 + from + i}-0`, line: `old ${(from + i) % 2 ? 'ERROR' : 'INFO'} line ${from + i}` }));

  it('puts older pages in front of the streamed lines, in stream order, through the filter', () => {
    const ring = new LogRing(100);
    const view = new LogView(ring);
    ring.push(batchOf(10, 12));
    view.setQuery({});
    expect(view.oldestId).toBe('1010-0');
    expect(view.prepend(page(5, 10))).toBe(true);
    expect(shownOf(view).map((e) => e.id)).toEqual(['1005-0', '1006-0', '1007-0', '1008-0', '1009-0', '1010-0', '1011-0']);
    expect(view.oldestId).toBe('1005-0');
    view.prepend(page(0, 6)); // overlaps 1005: only the lines older than what is held
    expect(view.olderCount).toBe(10);
    expect(shownOf(view).map((e) => e.id).slice(0, 6)).toEqual(['1000-0', '1001-0', '1002-0', '1003-0', '1004-0', '1005-0']);
    expect(shownOf(view).map((e) => e.n)).toEqual([-10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0, 1]);
    expect(view.prepend(page(0, 3))).toBe(false); // nothing older
    // a level filter applies to the history too, and new lines still append behind it
    view.setQuery({ levels: new Set(['ERROR'] as const) });
    expect(shownOf(view).map((e) => e.id)).toEqual(['1001-0', '1003-0', '1005-0', '1007-0', '1009-0']);
    view.prepend([{ id: '900-0', line: 'older ERROR' }, { id: '901-0', line: 'older INFO' }]);
    expect(shownOf(view).map((e) => [e.id, e.n]).slice(0, 2)).toEqual([['900-0', -12], ['1001-0', -9]]);
    ring.push(batchOf(12, 13, () => 'ERROR'));
    view.sync();
    expect(view.at(view.length - 1).id).toBe('1012-0');
  });

  it('forgets the history once the ring drops lines (no hole in the middle)', () => {
    const ring = new LogRing(3);
    const view = new LogView(ring);
    ring.push(batchOf(10, 12));
    view.setQuery({});
    view.prepend(page(0, 10));
    ring.push(batchOf(12, 14)); // capacity 3: line 10 is dropped
    view.sync();
    expect(shownOf(view).map((e) => e.id)).toEqual(['1011-0', '1012-0', '1013-0']);
    expect(view.olderCount).toBe(0);
    expect(view.prepend(page(0, 10))).toBe(false);
  });
});

describe('jump to time', () => {
  it('reads the UTC time printed at the start of a line, else falls back', () => {
    expect(lineTime('2026-08-22T12:34:56.123456Z INFO x', 7)).toBe(Date.UTC(2026, 7, 22, 12, 34, 56, 123));
    expect(lineTime('2026-08-22T12:34:56Z INFO x', 7)).toBe(Date.UTC(2026, 7, 22, 12, 34, 56));
    expect(lineTime('2026-08-22T12:34:56.5Z x', 7)).toBe(Date.UTC(2026, 7, 22, 12, 34, 56, 500));
    expect(lineTime('2026-08-22T12:34:56 local time, no Z', 7)).toBe(7);
    expect(lineTime('Traceback (most recent call last):', 7)).toBe(7);
  });

  it('finds the first line printed at or after a time, not the first that arrived then', () => {
    // lines written in second :00 and :01 but all arriving (stream ids) at :05, except one
    // line without a timestamp, which only its arrival places
    const at = (s: number) => Date.UTC(2026, 0, 1, 0, 0, s);
    const ring = new LogRing(100);
    const view = new LogView(ring);
    ring.push(toBatch([
      [`${at(5)}-0`, '2026-01-01T00:00:00.100000Z INFO a'],
      [`${at(5)}-1`, '2026-01-01T00:00:00.900000Z INFO b'],
      [`${at(5)}-2`, '2026-01-01T00:00:01.000000Z INFO c'],
      [`${at(5)}-3`, '2026-01-01T00:00:01.500000Z INFO d'],
      [`${at(6)}-0`, '  continuation line, no timestamp'],
    ]));
    view.setQuery({});
    expect(view.indexAtTime(new Date(at(0)))).toBe(0);
    expect(view.indexAtTime(new Date(at(1)))).toBe(2); // by arrival it would be 0
    expect(view.indexAtTime(new Date(at(1) + 600))).toBe(4); // the line without one: its arrival (:06)
    expect(view.indexAtTime(new Date(at(7)))).toBe(-1);
    expect(view.oldestTime).toBe(at(0) + 100);
    view.setQuery({ text: 'INFO' }); // over the lines shown
    expect(view.indexAtTime(new Date(at(1) + 600))).toBe(-1);
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
