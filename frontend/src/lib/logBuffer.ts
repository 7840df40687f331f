/** The log viewer's storage: a bounded ring of lines plus a batcher that hands incoming lines
 * to the UI once per animation frame, so 10,000 lines/s cost ~60 renders/s, not 10,000.
 *
 * Nothing here copies the lines held per update: the ring and the view's index of matching
 * lines are changed in place and carry a `version` the UI re-renders on, reading only the
 * lines in view (`LogView.at`). Lines travel as columns (`LineBatch`: ids, texts, level
 * codes), not one object per line, so a worker's message costs the page no object per line
 * either (the previous design copied up to 100,000 entries per frame: ~30 ms/s of garbage
 * collection at 10,000 lines/s, plus ~25 ms/s to turn worker messages back into objects). */

/** One line as the UI reads it (made on demand for the lines in view, not stored). */
export interface LogEntry {
  /** Stream id (`<ms>-<n>`), unique and ordered. */
  id: string;
  line: string;
  level: LogLevel | null;
  /** Position in the stream as this viewer received it (0, 1, 2...; scroll-back lines -1,
   * -2, ... backwards): stable while the line is held, so a key for React. */
  n: number;
}

export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';
/** Level codes of `LineBatch.levels`: 0 = no level, else index + 1 in this list. */
export const LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
const LEVEL_RE = /\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b/;

/** Lines as columns, oldest first: `ids[i]`, `lines[i]` and `levels[i]` (a level code, see
 * `LEVELS`; 0 = none) describe line i. The log stream worker posts these. */
export interface LineBatch {
  ids: string[];
  lines: string[];
  levels: ArrayLike<number>;
}

/** passivbot lines carry their level as a word (`... INFO ...`); WARN counts as WARNING. */
export function levelOf(line: string): LogLevel | null {
  const m = LEVEL_RE.exec(line.slice(0, 120));
  if (!m) return null;
  return (m[1] === 'WARN' ? 'WARNING' : m[1]) as LogLevel;
}

/** `levelOf` as a level code (0 = none, else index + 1 in `LEVELS`). */
export function levelCode(line: string): number {
  const l = levelOf(line);
  return l ? LEVELS.indexOf(l) + 1 : 0;
}

/** `[id, line]` pairs (or `{id, line}` objects, as `/logs/range` returns them) as a
 * `LineBatch`, levels read from the text. */
export function toBatch(pairs: readonly (readonly [string, string] | { id: string; line: string })[]): LineBatch {
  const count = pairs.length;
  const ids = new Array<string>(count);
  const lines = new Array<string>(count);
  const levels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const p = pairs[i];
    const [id, line] = 'id' in p ? [p.id, p.line] : p;
    ids[i] = id;
    lines[i] = line;
    levels[i] = levelCode(line);
  }
  return { ids, lines, levels };
}

const STAMP_RE = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:[.,](\d+))?Z/;

/** When a captured line was written, in ms since the epoch: the UTC timestamp printed at its
 * start (the agent's `2026-08-22T12:34:56.123456Z `, backend/botfleet/agent/capture.py, or
 * passivbot's own `2026-08-22T12:34:56Z` when the agent adds none, INTERFACE.md), else
 * `fallback` (its arrival: `idTime` of its stream id). Only a UTC (`Z`) stamp counts. */
export function lineTime(line: string, fallback: number): number {
  const m = STAMP_RE.exec(line);
  if (!m) return fallback;
  const ms = m[7] ? Number((m[7] + '00').slice(0, 3)) : 0;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], ms);
  return Number.isNaN(t) ? fallback : t;
}

/** Milliseconds of a stream id (`<ms>-<n>`), NaN if it is not one. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** Fixed-capacity ring of lines stored as columns: pushing past capacity overwrites the
 * oldest lines in place. Line `n` (0, 1, 2... in push order) lives in slot `n % capacity`. */
export class LogRing {
  private ids: string[];
  private texts: string[];
  private codes: Uint8Array;
  /** Lines ever pushed. */
  total = 0;
  constructor(readonly capacity: number) {
    this.ids = new Array<string>(capacity).fill('');
    this.texts = new Array<string>(capacity).fill('');
    this.codes = new Uint8Array(capacity);
  }
  /** Lines held. */
  get size(): number {
    return Math.min(this.total, this.capacity);
  }
  /** `n` of the oldest line still kept. */
  get first(): number {
    return this.total - this.size;
  }
  push(batch: LineBatch): void {
    const { ids, lines, levels } = batch;
    const cap = this.capacity;
    let slot = this.total % cap;
    for (let i = 0; i < ids.length; i++) {
      this.ids[slot] = ids[i];
      this.texts[slot] = lines[i];
      this.codes[slot] = levels[i];
      if (++slot === cap) slot = 0;
    }
    this.total += ids.length;
  }
  /** Stream id of line `n` (`first <= n < total`). */
  id(n: number): string {
    return this.ids[n % this.capacity];
  }
  /** Text of line `n` (`first <= n < total`). */
  line(n: number): string {
    return this.texts[n % this.capacity];
  }
  /** Level code of line `n` (`first <= n < total`; 0 = none). */
  level(n: number): number {
    return this.codes[n % this.capacity];
  }
}

export interface LogQuery {
  text?: string;
  levels?: ReadonlySet<LogLevel>;
}

/** A growable list of increasing numbers, cheap to append to, to trim at the front and to
 * search: the `n` of each line a filter lets through. One Float64Array, regrown by doubling
 * or slid back when mostly trimmed (n passes 2^31 after ~2.5 days at 10,000 lines/s). */
class NList {
  private buf = new Float64Array(1024);
  private head = 0;
  length = 0;
  get(i: number): number {
    return this.buf[this.head + i];
  }
  push(v: number): void {
    if (this.head + this.length === this.buf.length) this.room();
    this.buf[this.head + this.length++] = v;
  }
  /** Drop the values below `v` from the front. */
  dropBelow(v: number): void {
    const k = this.search(v);
    this.head += k;
    this.length -= k;
  }
  /** Put `vs` (increasing, all below the first value) in front. */
  prepend(vs: readonly number[]): void {
    const next = new Float64Array(Math.max(1024, 2 * (vs.length + this.length)));
    next.set(vs);
    next.set(this.buf.subarray(this.head, this.head + this.length), vs.length);
    this.buf = next;
    this.head = 0;
    this.length += vs.length;
  }
  clear(): void {
    this.head = this.length = 0;
  }
  /** Index of the first value `>= v` (length if none). */
  search(v: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.buf[this.head + mid] >= v) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  private room(): void {
    if (this.head >= this.length) {
      this.buf.copyWithin(0, this.head, this.head + this.length); // mostly trimmed: slide back
    } else {
      const next = new Float64Array(2 * this.buf.length);
      next.set(this.buf.subarray(this.head, this.head + this.length));
      this.buf = next;
    }
    this.head = 0;
  }
}

/** The lines a query shows, over a `LogRing`, kept up to date in place: `sync` looks at the
 * lines pushed since its last call only (filtering them alone) and trims what the ring
 * dropped; nothing is copied per update. Read it by index (`length`, `at(i)`, `nAt(i)`);
 * `version` grows whenever what it shows changes (the UI re-renders on it).
 *
 * Older lines read back through `GET /instances/{id}/logs/range` (scroll-back) are held in
 * front of the ring's (`prepend`), numbered -1, -2, ... backwards. They stay contiguous with
 * the ring only while the ring has dropped nothing; once it drops a line the history before it
 * is forgotten too (it would leave a hole in the middle). */
export class LogView {
  /** Grows whenever the lines shown change. */
  version = 0;
  /** Scroll-back lines, oldest first (line n lives at index olderCount + n). */
  private olderIds: string[] = [];
  private olderTexts: string[] = [];
  private olderCodes: number[] = [];
  /** Lines the filter lets through, by n; unused while there is no filter. */
  private shown = new NList();
  private filtered = false;
  private lowerText = '';
  /** Bit `code` set for each wanted level code (0: any level). */
  private levelMask = 0;
  private key: string | null = null;
  /** `ring.total` when last synced. */
  private seen = 0;
  constructor(private readonly ring: LogRing) {}

  /** Scroll-back lines held. */
  get olderCount(): number {
    return this.olderIds.length;
  }
  /** Lines shown. */
  get length(): number {
    return this.filtered ? this.shown.length : this.olderIds.length + this.ring.size;
  }
  /** `n` of the i-th line shown (0 <= i < length). */
  nAt(i: number): number {
    return this.filtered ? this.shown.get(i) : this.start() + i;
  }
  /** The i-th line shown (0 <= i < length), as a new object: meant for the lines in view. */
  at(i: number): LogEntry {
    const n = this.nAt(i);
    const code = this.codeOf(n);
    return { id: this.idOf(n), line: this.lineOf(n), level: code ? LEVELS[code - 1] : null, n };
  }
  /** Index of the first line shown whose n is `>= n` (length if none). */
  indexOfN(n: number): number {
    if (this.filtered) return this.shown.search(n);
    return Math.max(0, Math.min(this.length, n - this.start()));
  }
  /** Id of the oldest line held (the `before` of the next scroll-back page), or null. */
  get oldestId(): string | null {
    return this.olderIds.length || this.ring.size ? this.idOf(this.start()) : null;
  }
  /** `lineTime` of the oldest line held (shown or not), ms since the epoch, or null. */
  get oldestTime(): number | null {
    return this.olderIds.length || this.ring.size ? this.timeOf(this.start()) : null;
  }
  /** The texts of the lines shown, oldest first (for a download). */
  texts(): string[] {
    const out = new Array<string>(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.lineOf(this.nAt(i));
    return out;
  }

  /** Show the lines matching `q`: every line held is read again only if the query changed
   * (else this is `sync`). Returns whether what is shown changed. */
  setQuery(q: LogQuery): boolean {
    const key = `${q.text ?? ''}|${[...(q.levels ?? [])].sort().join(',')}`;
    if (key === this.key) return this.sync();
    this.key = key;
    this.lowerText = q.text?.toLowerCase() ?? '';
    this.levelMask = 0;
    for (const l of q.levels ?? []) this.levelMask |= 1 << (LEVELS.indexOf(l) + 1);
    this.filtered = !!(this.lowerText || this.levelMask);
    this.trimOlder();
    this.seen = this.ring.total;
    this.shown.clear();
    if (this.filtered) {
      for (let n = -this.olderIds.length; n < 0; n++) if (this.pass(n)) this.shown.push(n);
      for (let n = this.ring.first; n < this.ring.total; n++) if (this.pass(n)) this.shown.push(n);
    }
    this.version++;
    return true;
  }

  /** Take in the lines the ring got since the last call (and forget those it dropped).
   * Returns whether what is shown changed. */
  sync(): boolean {
    const { total, first } = this.ring;
    if (total === this.seen) return false;
    this.trimOlder();
    if (this.filtered) {
      this.shown.dropBelow(first);
      for (let n = Math.max(this.seen, first); n < total; n++) if (this.pass(n)) this.shown.push(n);
    }
    this.seen = total;
    this.version++;
    return true;
  }

  /** Put `page` (oldest first; lines older than every line held) in front. Lines not older
   * than the oldest held are ignored (a page that overlaps what the stream already sent), and
   * so is every page once the ring has dropped lines. Returns whether anything was added. */
  prepend(page: readonly { id: string; line: string }[]): boolean {
    this.sync();
    if (this.ring.first > 0) return false;
    const oldest = this.oldestId;
    const fresh = oldest === null ? page : page.filter((e) => compareIds(e.id, oldest) < 0);
    if (!fresh.length) return false;
    const b = toBatch(fresh);
    this.olderIds = b.ids.concat(this.olderIds);
    this.olderTexts = b.lines.concat(this.olderTexts);
    this.olderCodes = Array.from(b.levels).concat(this.olderCodes);
    if (this.filtered) {
      const ns: number[] = [];
      const n0 = -this.olderIds.length;
      for (let n = n0; n < n0 + fresh.length; n++) if (this.pass(n)) ns.push(n);
      if (ns.length) this.shown.prepend(ns);
    }
    this.version++;
    return true;
  }

  /** Index of the first line shown written at or after `time`, by binary search (lines are
   * in stream order): its printed UTC timestamp, or its arrival for a line without one
   * (`lineTime`). -1 if none. */
  indexAtTime(time: Date): number {
    const t = time.getTime();
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.timeOf(this.nAt(mid)) >= t) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.length ? lo : -1;
  }

  /** n of the oldest line held. */
  private start(): number {
    return this.olderIds.length ? -this.olderIds.length : this.ring.first;
  }
  private trimOlder(): void {
    if (this.ring.first > 0 && this.olderIds.length) {
      this.olderIds = [];
      this.olderTexts = [];
      this.olderCodes = [];
    }
  }
  private pass(n: number): boolean {
    if (this.levelMask && !(this.levelMask & (1 << this.codeOf(n)))) return false;
    return !this.lowerText || this.lineOf(n).toLowerCase().includes(this.lowerText);
  }
  private idOf(n: number): string {
    return n < 0 ? this.olderIds[this.olderIds.length + n] : this.ring.id(n);
  }
  private lineOf(n: number): string {
    return n < 0 ? this.olderTexts[this.olderTexts.length + n] : this.ring.line(n);
  }
  private codeOf(n: number): number {
    return n < 0 ? this.olderCodes[this.olderCodes.length + n] : this.ring.level(n);
  }
  private timeOf(n: number): number {
    return lineTime(this.lineOf(n), idTime(this.idOf(n)));
  }
}

export type Scheduler = (flush: () => void) => unknown;
const rafScheduler: Scheduler = (flush) =>
  typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : setTimeout(flush, 16);

/** Collects lines as they arrive and calls `flush(batch)` at most once per frame. */
export class LineBatcher {
  private ids: string[] = [];
  private lines: string[] = [];
  private levels: number[] = [];
  private scheduled = false;
  constructor(private readonly onFlush: (batch: LineBatch) => void, private readonly schedule: Scheduler = rafScheduler) {}
  /** One line (its level read here). */
  add(id: string, line: string): void {
    this.ids.push(id);
    this.lines.push(line);
    this.levels.push(levelCode(line));
    this.later();
  }
  /** Lines already parsed (the log stream worker sets their level codes). */
  addBatch(batch: LineBatch): void {
    for (let i = 0; i < batch.ids.length; i++) {
      this.ids.push(batch.ids[i]);
      this.lines.push(batch.lines[i]);
      this.levels.push(batch.levels[i]);
    }
    this.later();
  }
  flush(): void {
    this.scheduled = false;
    if (!this.ids.length) return;
    const batch = { ids: this.ids, lines: this.lines, levels: this.levels };
    this.ids = [];
    this.lines = [];
    this.levels = [];
    this.onFlush(batch);
  }
  private later(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
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
