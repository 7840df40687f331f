/// <reference lib="webworker" />
/** Follows an instance's log SSE off the main thread: EventSource parsing and dispatch of
 * 10,000 events/s (and the bursts after a stall) cost the page nothing; the page gets one
 * message with `[id, line][]` every ~16 ms. Messages in: `{ url }` to start. Out:
 * `{ type: 'lines', lines }`, `{ type: 'open' }`, `{ type: 'error' }`. */
export {};

const scope = self as unknown as DedicatedWorkerGlobalScope;
let pending: [string, string][] = [];
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
  source.addEventListener('log', (e) => {
    const m = e as MessageEvent<string>;
    pending.push([m.lastEventId, m.data]);
    if (timer === null) timer = setTimeout(flush, 16);
  });
};
