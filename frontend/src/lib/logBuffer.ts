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
    this.pending.push({ id, line, level: levelOf(line) });
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

/** Index of the first line at or after `time` (lines start with an ISO UTC timestamp, or the
 * stream id's milliseconds are used). Returns -1 if none. */
export function indexAtTime(lines: readonly LogEntry[], time: Date): number {
  const t = time.getTime();
  for (let i = 0; i < lines.length; i++) {
    const ms = Number(lines[i].id.split('-')[0]);
    if (isFinite(ms) && ms >= t) return i;
  }
  return -1;
}

/** The lines a query shows, kept up to date incrementally: a new batch is filtered alone (not
 * the whole ring), and lines the ring dropped are trimmed from the front. */
export class LogView {
  lines: LogEntry[] = [];
  private key = '';
  constructor(private readonly ring: LogRing) {}
  /** Bring the view up to date; returns the lines (a new array when anything changed). */
  update(q: LogQuery, batch: readonly LogEntry[] | null): LogEntry[] {
    const key = `${q.text ?? ''}|${[...(q.levels ?? [])].sort().join(',')}`;
    const lower = q.text?.toLowerCase() ?? '';
    const all = !lower && !(q.levels && q.levels.size);
    if (key !== this.key || batch === null) {
      this.key = key;
      const src = this.ring.toArray();
      this.lines = all ? src : src.filter((e) => matches(e, q, lower));
      return this.lines;
    }
    const first = this.ring.first;
    let drop = 0;
    while (drop < this.lines.length && (this.lines[drop].n ?? 0) < first) drop++;
    const added = all ? batch.filter((e) => (e.n ?? 0) >= first) : batch.filter((e) => (e.n ?? 0) >= first && matches(e, q, lower));
    if (!drop && !added.length) return this.lines;
    this.lines = drop ? this.lines.slice(drop).concat(added) : this.lines.concat(added);
    return this.lines;
  }
}
