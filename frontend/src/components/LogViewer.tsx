/** Live log viewer over `GET /api/v1/instances/{id}/logs` (SSE: `event: logs` batches with
 * `?batch=true`, which the instance page asks for, or `event: log` per line). Lines are
 * batched once per animation frame into a bounded ring (100,000 lines, changed in place: no
 * copy of the lines per frame) and shown in a windowed list that reads only the lines in view
 * (only those are in the DOM), so a 10,000 lines/s stream keeps the page responsive.
 * Follow/pause, search, level filter, jump to time (by the UTC time printed at the start of
 * each line; its arrival for a line without one), download of the lines shown; scrolling to
 * the top (or "Older lines") reads earlier pages through
 * `GET /instances/{id}/logs/range`. EventSource resumes with Last-Event-ID itself. */
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { ActionIcon, Badge, Button, Chip, Group, Text, TextInput, Tooltip } from '@mantine/core';
import { api, call } from '../api/client';
import { ProblemAlert } from './ProblemAlert';
import { LEVELS, LineBatcher, LogRing, LogView, lineWindow, type LineBatch, type LogLevel } from '../lib/logBuffer';

const LEVEL_COLOR: Partial<Record<LogLevel, string>> = { WARNING: 'var(--mantine-color-orange-text)', ERROR: 'var(--mantine-color-red-text)', CRITICAL: 'var(--mantine-color-red-text)' };
const LINE = 18;
/** Lines per scroll-back page, and the most pages a jump to time reads before giving up. */
const PAGE = 2000;
const JUMP_PAGES = 25;

export interface LogViewerProps {
  /** SSE URL of the log stream. */
  url: string;
  /** The instance, for scroll-back through `/logs/range` (none: the stream only). */
  instanceId?: string;
  capacity?: number;
  height?: number | string;
  fileName?: string;
}

export function LogViewer({ url, instanceId, capacity = 100_000, height = 480, fileName = 'log.txt' }: LogViewerProps) {
  const ring = useMemo(() => new LogRing(capacity), [capacity, url]); // eslint-disable-line react-hooks/exhaustive-deps
  const view = useMemo(() => new LogView(ring), [ring]);
  /** `view.version` last shown: the lines live in `view`, changed in place. */
  const [version, setVersion] = useState(0);
  const [follow, setFollow] = useState(true);
  const [text, setText] = useState('');
  const [levels, setLevels] = useState<string[]>([]);
  const [connected, setConnected] = useState(false);
  const [received, setReceived] = useState(0);
  const [jumpTo, setJumpTo] = useState('');
  const lastCount = useRef(0);
  const countTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const followRef = useRef(follow);
  followRef.current = follow;
  const query = useMemo(() => ({ text, levels: new Set(levels as LogLevel[]) }), [text, levels]);
  const queryRef = useRef(query);
  queryRef.current = query;

  useEffect(() => {
    view.setQuery(queryRef.current);
    setVersion(view.version);
  }, [query, view]);

  useEffect(() => {
    const batcher = new LineBatcher((batch) => {
      ring.push(batch);
      view.sync();
      const now = performance.now();
      if (now - lastCount.current > 250) { lastCount.current = now; setReceived(ring.total); } // the counter: 4/s is plenty
      else if (countTimer.current === undefined) countTimer.current = setTimeout(() => { countTimer.current = undefined; setReceived(ring.total); }, 300); // and the last batch
      setVersion(view.version); // paused too: the list keeps the reader's lines in place
    });
    // The SSE connection lives in a worker (parsing off the main thread); EventSource in the
    // page is the fallback where workers cannot open one (jsdom in component tests).
    if (typeof Worker !== 'undefined') {
      const worker = new Worker(new URL('../lib/logStream.worker.ts', import.meta.url), { type: 'module' });
      worker.onmessage = (m: MessageEvent<{ type: string; batch?: LineBatch }>) => {
        if (m.data.type === 'lines') batcher.addBatch(m.data.batch!);
        else setConnected(m.data.type === 'open');
      };
      worker.postMessage({ url: new URL(url, location.href).href });
      return () => { worker.terminate(); clearTimeout(countTimer.current); };
    }
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(false);
    source.addEventListener('log', (e) => {
      const m = e as MessageEvent<string>;
      batcher.add(m.lastEventId, m.data);
    });
    source.addEventListener('logs', (e) => {
      for (const [id, line] of JSON.parse((e as MessageEvent<string>).data) as [string, string][]) batcher.add(id, line);
    });
    return () => { source.close(); clearTimeout(countTimer.current); };
  }, [url, ring, view]);

  const [jumpIndex, setJumpIndex] = useState<{ index: number } | null>(null);
  const [history, setHistory] = useState<'more' | 'loading' | 'start'>('more');
  const [historyError, setHistoryError] = useState<unknown>(null);
  const loading = useRef(false);
  useEffect(() => setHistory('more'), [ring]);

  /** Read one page of older lines and put it in front; false when the stream has no more. */
  const loadOlder = useCallback(async (): Promise<boolean> => {
    if (!instanceId || loading.current) return false;
    loading.current = true;
    setHistory('loading');
    setHistoryError(null);
    try {
      const before = view.oldestId;
      const page = await call(api.GET('/api/v1/instances/{instance_id}/logs/range', {
        params: { path: { instance_id: instanceId }, query: { limit: PAGE, ...(before ? { before } : {}) } },
      }));
      setFollow(false);
      view.prepend(page.items);
      setVersion(view.version);
      const more = page.next_before !== null && page.next_before !== undefined;
      setHistory(more ? 'more' : 'start');
      return more;
    } catch (e) {
      setHistoryError(e);
      setHistory('more');
      return false;
    } finally {
      loading.current = false;
    }
  }, [instanceId, view]);

  const resume = () => {
    setFollow(true);
    setVersion(view.version);
  };
  const download = () => {
    const blob = new Blob([view.texts().join('\n') + '\n'], { type: 'text/plain' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = fileName;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  /** Scroll to the first line written at or after the chosen local time (by the UTC time
   * printed at its start, else its arrival), reading older pages until the lines held reach
   * back that far (at most JUMP_PAGES pages). */
  const jump = async () => {
    if (!jumpTo) return;
    const d = new Date(jumpTo); // `YYYY-MM-DDTHH:MM[:SS]`, local time
    if (isNaN(d.getTime())) return;
    setFollow(false);
    for (let pages = 0; pages < JUMP_PAGES; pages++) {
      const oldest = view.oldestTime;
      if (oldest !== null && oldest <= d.getTime()) break;
      if (!(await loadOlder())) break;
    }
    const i = view.indexAtTime(d);
    setJumpIndex({ index: i >= 0 ? i : Math.max(0, view.length - 1) });
  };

  return (
    <div data-testid="log-viewer">
      <Group gap="xs" mb="xs" wrap="wrap">
        <Tooltip label={follow ? 'Stop scrolling with new lines' : 'Scroll with new lines again'}>
          <Button size="xs" variant={follow ? 'filled' : 'default'} onClick={() => (follow ? setFollow(false) : resume())} data-testid="log-follow">
            {follow ? 'Following' : 'Paused'}
          </Button>
        </Tooltip>
        <TextInput size="xs" placeholder="Search lines" value={text} onChange={(e) => setText(e.currentTarget.value)} aria-label="Search log lines" w={200} />
        <Chip.Group multiple value={levels} onChange={setLevels}>
          <Group gap={4}>{LEVELS.slice(1, 4).map((l) => <Chip key={l} value={l} size="xs">{l}</Chip>)}</Group>
        </Chip.Group>
        <TextInput size="xs" type="datetime-local" step={1} value={jumpTo} onChange={(e) => setJumpTo(e.currentTarget.value)} aria-label="Jump to time" title="Your local time; older lines are read back as needed" w={200}
          onKeyDown={(e) => e.key === 'Enter' && jump()} />
        <Button size="xs" variant="default" onClick={jump} disabled={!jumpTo} data-testid="log-jump">Jump</Button>
        {instanceId && (
          <Button size="xs" variant="default" onClick={loadOlder} loading={history === 'loading'} disabled={history === 'start'} data-testid="log-older">
            {history === 'start' ? 'Start of the stream' : 'Older lines'}
          </Button>
        )}
        <Tooltip label="Download the lines shown (search and level filter apply)">
          <ActionIcon variant="default" size="md" onClick={download} aria-label="Download log">⤓</ActionIcon>
        </Tooltip>
        <Badge variant="dot" color={connected ? 'green' : 'gray'}>{connected ? 'streaming' : 'reconnecting'}</Badge>
        <Text size="xs" c="dimmed" data-testid="log-count">{view.length} shown · {received} received{received > capacity ? ` (oldest ${received - capacity} dropped)` : ''}{view.olderCount ? ` · ${view.olderCount} older read back` : ''}</Text>
      </Group>
      <ProblemAlert error={historyError} onClose={() => setHistoryError(null)} />
      <LogLines view={view} version={version} follow={follow} height={height} received={received} jump={jumpIndex} onScrollUp={() => setFollow(false)}
        onTop={instanceId && history === 'more' ? loadOlder : undefined} />
    </div>
  );
}

/** Lines drawn beyond each edge of the visible ones. */
const OVERSCAN = 10;

/** The windowed lines: a separate memoized component, so the toolbar does not re-render
 * with every frame's batch and the list does not re-render with the toolbar. */
const LogLines = memo(function LogLines({ view, version, follow, height, received, jump, onScrollUp, onTop }: {
  /** The lines (changed in place) and its version when this render was asked for. */
  view: LogView; version: number; follow: boolean; height: number | string; received: number; jump: { index: number } | null; onScrollUp: () => void;
  /** Called when a paused reader scrolls to the top (to read older lines). */
  onTop?: () => void;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewHeight, setViewHeight] = useState(typeof height === 'number' ? height : 480);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(() => setViewHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const count = view.length;
  const total = count * LINE;
  // Following: the window is the end, whatever the scroll event has said so far.
  const top = follow ? Math.max(0, total - viewHeight) : scrollTop;
  // Paused, what the reader looks at must not move when lines come or go in front of it
  // (older lines read back, lines the ring dropped, a new filter): the top line in view is
  // remembered by its n and the scroll position shifted by its change of index (every line is
  // LINE px high).
  const anchor = useRef<{ n: number; index: number } | null>(null);
  const remember = useCallback(() => {
    const el = scroller.current;
    const index = el ? Math.min(Math.floor(el.scrollTop / LINE), view.length - 1) : -1;
    anchor.current = index >= 0 ? { n: view.nAt(index), index } : null;
  }, [view]);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (follow || !el) return;
    const a = anchor.current;
    if (a) {
      const index = view.indexOfN(a.n);
      if (index !== a.index) {
        el.scrollTop += (index - a.index) * LINE;
        setScrollTop(el.scrollTop);
      }
    }
    remember();
  }, [version, follow, view, remember]);
  useLayoutEffect(() => {
    if (follow && scroller.current) scroller.current.scrollTop = top;
  }, [follow, top]);
  useLayoutEffect(() => {
    // Paused: the window follows the scroll events again, from where following left it.
    if (!follow && scroller.current) setScrollTop(scroller.current.scrollTop);
  }, [follow]);
  useLayoutEffect(() => {
    if (jump && scroller.current) {
      scroller.current.scrollTop = jump.index * LINE;
      setScrollTop(scroller.current.scrollTop);
      remember();
    }
  }, [jump, remember]);
  const [first, last] = lineWindow(count, top, viewHeight, LINE, OVERSCAN);
  const shown = [];
  for (let i = first; i < last; i++) {
    const e = view.at(i);
    shown.push(
      <div key={e.n} data-testid="log-line" style={{ position: 'absolute', top: 0, transform: `translateY(${i * LINE}px)`, height: LINE, lineHeight: `${LINE}px`, whiteSpace: 'pre', padding: '0 6px', color: e.level ? LEVEL_COLOR[e.level] : undefined }}>
        {e.line}
      </div>,
    );
  }
  return (
    <div ref={scroller} onWheel={(e) => { if (e.deltaY < 0 && follow) onScrollUp(); }} tabIndex={0} aria-label="Log lines" role="log"
      onScroll={(e) => {
        if (follow) return; // the window is the end; reading scrollTop here would force a layout per frame
        const t = e.currentTarget.scrollTop;
        setScrollTop(t);
        remember();
        if (onTop && t < LINE) onTop();
      }} data-testid="log-scroller"
      style={{ height, overflow: 'auto', contain: 'strict', fontFamily: 'var(--mantine-font-family-monospace)', fontSize: 12, border: '1px solid var(--mantine-color-default-border)', borderRadius: 4, background: 'var(--mantine-color-body)' }}>
      {count === 0 ? <Text p="sm" size="sm" c="dimmed">{received ? 'No line matches the search or level filter.' : 'No log lines yet: start the instance and its output appears here.'}</Text> : (
        <div style={{ height: total, position: 'relative' }}>{shown}</div>
      )}
    </div>
  );
});
