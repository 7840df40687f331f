/// <reference lib="webworker" />
/** Follows an instance's log SSE off the main thread: parsing (and the line's level) costs the
 * page nothing. Batched streams (`?batch=true`: `event: logs`, data `[[id, line], ...]`, ~20
 * events/s) are handed on one message per event; single-line events (`event: log`) are
 * gathered for ~16 ms. Messages in: `{ url }` to start. Out: `{ type: 'lines', batch }` with
 * `batch` a `LineBatch` (columns: ids, lines, level codes as a transferred Uint8Array; no
 * object per line, so the page's copy of the message makes none either), `{ type: 'open' }`,
 * `{ type: 'error' }`. EventSource resumes with Last-Event-ID itself (a batch's id is its last
 * line's). */
import { levelCode, toBatch, type LineBatch } from './logBuffer';

const scope = self as unknown as DedicatedWorkerGlobalScope;
let pendingIds: string[] = [];
let pendingLines: string[] = [];
let pendingLevels: number[] = [];
let timer: ReturnType<typeof setTimeout> | null = null;

const post = (batch: LineBatch) => {
  const levels = batch.levels instanceof Uint8Array ? batch.levels : Uint8Array.from(batch.levels);
  scope.postMessage({ type: 'lines', batch: { ids: batch.ids, lines: batch.lines, levels } }, [levels.buffer]);
};

const flush = () => {
  timer = null;
  if (!pendingIds.length) return;
  post({ ids: pendingIds, lines: pendingLines, levels: pendingLevels });
  pendingIds = [];
  pendingLines = [];
  pendingLevels = [];
};

scope.onmessage = (msg: MessageEvent<{ url: string }>) => {
  const source = new EventSource(msg.data.url, { withCredentials: true });
  source.onopen = () => scope.postMessage({ type: 'open' });
  source.onerror = () => scope.postMessage({ type: 'error' });
  source.addEventListener('logs', (e) => {
    const batch = toBatch(JSON.parse((e as MessageEvent<string>).data) as [string, string][]);
    if (timer !== null) { clearTimeout(timer); flush(); } // keep the order with any single lines
    post(batch);
  });
  source.addEventListener('log', (e) => {
    const m = e as MessageEvent<string>;
    pendingIds.push(m.lastEventId);
    pendingLines.push(m.data);
    pendingLevels.push(levelCode(m.data));
    if (timer === null) timer = setTimeout(flush, 16);
  });
};
