/** The log viewer's storage: a bounded ring of lines plus a batcher that hands incoming lines
 * to the UI once per animation frame, so 10,000 lines/s cost ~60 renders/s, not 10,000. */

export interface LogEntry {
  /** Stream id (`<ms>-<n>`), unique and ordered. */
  id: string;
  line: string;
  level: LogLevel | null;
  /** Position in the stream as this viewer received it (0, 1, 2...): set by LogRing.push. */
  n?: number;
}

export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';
const LEVEL_RE = /\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;

/** passivbot lines carry their level as a word (`... INFO ...`); WARN counts as WARNING. */
export function levelOf(line: string): LogLevel | null {
  const m = LEVEL_RE.exec(line.slice(0, 120));
  if (!m) return null;
  return (m[1] === 'WARN' ? 'WARNING' : m[1]) as LogLevel;
}

/** Fixed-capacity ring: pushing past capacity drops the oldest lines. */
export class LogRing {
  private items: (LogEntry | undefined)[];
  private start = 0;
  private count = 0;
  /** Lines ever pushed (also the version the UI watches). */
  total = 0;
  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }
  get size(): number {
    return this.count;
  }
  /** `n` of the oldest line still kept. */
  get first(): number {
    return this.total - this.count;
  }
  push(entries: readonly LogEntry[]): void {
    for (const e of entries) {
      e.n = this.total++;
      const idx = (this.start + this.count) % this.capacity;
      this.items[idx] = e;
      if (this.count < this.capacity) this.count++;
      else this.start = (this.start + 1) % this.capacity;
    }
  }
  at(i: number): LogEntry {
    return this.items[(this.start + i) % this.capacity] as LogEntry;
  }
  toArray(): LogEntry[] {
    const out = new Array<LogEntry>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.at(i);
    return out;
  }
  clear(): void {
    this.items = new Array(this.capacity);
    this.start = this.count = this.total = 0;
  }
}

export interface LogQuery {
  text?: string;
  levels?: ReadonlySet<LogLevel>;
}

export function matches(e: LogEntry, q: LogQuery, lowerText = q.text?.toLowerCase() ?? ''): boolean {
  if (q.levels && q.levels.size && !(e.level && q.levels.has(e.level))) return false;
  return !lowerText || e.line.toLowerCase().includes(lowerText);
}

export type Scheduler = (flush: () => void) => unknown;
const rafScheduler: Scheduler = (flush) =>
  typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : setTimeout(flush, 16);

/** Collects lines as they arrive and calls `flush(batch)` at most once per frame. */
export class LineBatcher {
  private pending: LogEntry[] = [];
  private scheduled = false;
  constructor(private readonly onFlush: (batch: LogEntry[]) => void, private readonly schedule: Scheduler = rafScheduler) {}
  add(id: string, line: string): void {
    this.addEntries([{ id, line, level: levelOf(line) }]);
  }
  /** Lines already parsed (the log stream worker sets their level). */
  addEntries(entries: readonly LogEntry[]): void {
    for (const e of entries) this.pending.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }
  flush(): void {
    this.scheduled = false;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.onFlush(batch);
  }
}

/** Milliseconds of a stream id (`<ms>-<n>`), NaN if it is not one. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** Index of the first line whose stream id (arrival time, ms) is at or after `time`, by binary
 * search (lines are in stream order). Returns -1 if none. */
export function indexAtTime(lines: readonly LogEntry[], time: Date): number {
  const t = time.getTime();
  let lo = 0;
  let hi = lines.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (idTime(lines[mid].id) >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo < lines.length ? lo : -1;
}

/** The lines a query shows, kept up to date incrementally: a new batch is filtered alone (not
 * the whole ring), and lines the ring dropped are trimmed from the front.
 *
 * Older lines read back through `GET /instances/{id}/logs/range` (scroll-back) are held in
 * front of the ring's (`prepend`), numbered -1, -2, ... backwards. They stay contiguous with
 * the ring only while the ring has dropped nothing; once it drops a line the history before it
 * is forgotten too (it would leave a hole in the middle). */
export class LogView {
  lines: LogEntry[] = [];
  /** Scroll-back lines, oldest first. */
  older: LogEntry[] = [];
  private key = '';
  constructor(private readonly ring: LogRing) {}

  /** Id of the oldest line held (the `before` of the next scroll-back page), or null. */
  get oldestId(): string | null {
    return this.older.length ? this.older[0].id : this.ring.size ? this.ring.at(0).id : null;
  }

  /** Put `page` (oldest first; lines older than every line held) in front. Lines not older
   * than the oldest held are ignored (a page that overlaps what the stream already sent).
   * Returns the lines shown. */
  prepend(page: readonly { id: string; line: string }[], q: LogQuery): LogEntry[] {
    const oldest = this.oldestId;
    const fresh = oldest === null ? page : page.filter((e) => compareIds(e.id, oldest) < 0);
    if (!fresh.length) return this.lines;
    let n = this.older.length ? (this.older[0].n ?? 0) - fresh.length : -fresh.length;
    const entries: LogEntry[] = fresh.map((e) => ({ id: e.id, line: e.line, level: levelOf(e.line), n: n++ }));
    this.older = entries.concat(this.older);
    const lower = q.text?.toLowerCase() ?? '';
    const shown = !lower && !(q.levels && q.levels.size) ? entries : entries.filter((e) => matches(e, q, lower));
    this.lines = shown.concat(this.lines);
    return this.lines;
  }

  /** Bring the view up to date; returns the lines (a new array when anything changed). */
  update(q: LogQuery, batch: readonly LogEntry[] | null): LogEntry[] {
    const key = `${q.text ?? ''}|${[...(q.levels ?? [])].sort().join(',')}`;
    const lower = q.text?.toLowerCase() ?? '';
    const all = !lower && !(q.levels && q.levels.size);
    const first = this.ring.first;
    if (first > 0 && this.older.length) this.older = []; // no longer contiguous with the ring
    if (key !== this.key || batch === null) {
      this.key = key;
      const src = this.older.length ? this.older.concat(this.ring.toArray()) : this.ring.toArray();
      this.lines = all ? src : src.filter((e) => matches(e, q, lower));
      return this.lines;
    }
    let drop = 0;
    if (first > 0) while (drop < this.lines.length && (this.lines[drop].n ?? 0) < first) drop++;
    const added = all ? batch.filter((e) => (e.n ?? 0) >= first) : batch.filter((e) => (e.n ?? 0) >= first && matches(e, q, lower));
    if (!drop && !added.length) return this.lines;
    this.lines = drop ? this.lines.slice(drop).concat(added) : this.lines.concat(added);
    return this.lines;
  }
}

/** Order of two Redis stream ids (`<ms>-<seq>`): negative, 0 or positive. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am - bm || (as ?? 0) - (bs ?? 0);
}

/** The lines `[first, last)` a list of `count` lines, each `lineHeight` px high, draws when
 * scrolled to `scrollTop` in a view `viewHeight` px high, plus `overscan` lines beyond each
 * edge. Arithmetic, so its cost does not grow with the count (the log viewer used
 * react-virtual, which rebuilt a measurement of every line, up to 100,000, whenever the count
 * changed: every frame while following). */
export function lineWindow(count: number, scrollTop: number, viewHeight: number, lineHeight: number, overscan: number): [number, number] {
  const first = Math.max(0, Math.min(count, Math.floor(scrollTop / lineHeight)) - overscan);
  const last = Math.min(count, Math.ceil((scrollTop + viewHeight) / lineHeight) + overscan);
  return [first, Math.max(first, last)];
}
