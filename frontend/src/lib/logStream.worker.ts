/// <reference lib="webworker" />
/** Follows an instance's log SSE off the main thread: parsing (and the line's level) costs the
 * page nothing. Batched streams (`?batch=true`: `event: logs`, data `[[id, line], ...]`, ~20
 * events/s) are handed on one message per event; single-line events (`event: log`) are
 * gathered for ~16 ms. Messages in: `{ url }` to start. Out: `{ type: 'lines', lines }` with
 * `lines` = `LogEntry[]` (id, line, level), `{ type: 'open' }`, `{ type: 'error' }`.
 * EventSource resumes with Last-Event-ID itself (a batch's id is its last line's). */
import { levelOf, type LogEntry } from './logBuffer';

const scope = self as unknown as DedicatedWorkerGlobalScope;
let pending: LogEntry[] = [];
let timer: ReturnType<typeof setTimeout> | null = null;

const flush = () => {
  timer = null;
  if (!pending.length) return;
  scope.postMessage({ type: 'lines', lines: pending });
  pending = [];
};

scope.onmessage = (msg: MessageEvent<{ url: string }>) => {
  const source = new EventSource(msg.data.url, { withCredentials: true });
  source.onopen = () => scope.postMessage({ type: 'open' });
  source.onerror = () => scope.postMessage({ type: 'error' });
  source.addEventListener('logs', (e) => {
    const batch = JSON.parse((e as MessageEvent<string>).data) as [string, string][];
    const lines: LogEntry[] = batch.map(([id, line]) => ({ id, line, level: levelOf(line) }));
    if (timer !== null) { clearTimeout(timer); flush(); } // keep the order with any single lines
    scope.postMessage({ type: 'lines', lines });
  });
  source.addEventListener('log', (e) => {
    const m = e as MessageEvent<string>;
    pending.push({ id: m.lastEventId, line: m.data, level: levelOf(m.data) });
    if (timer === null) timer = setTimeout(flush, 16);
  });
};
