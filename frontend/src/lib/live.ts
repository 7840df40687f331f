/** The fleet-wide event stream (SSE `/api/v1/events`, cookie auth): keeps the query cache
 * current (instance states patched in place, other changes refetched at most once a second)
 * and keeps the last 200 events for the overview's live feed. */
import { useEffect, useSyncExternalStore } from 'react';
import type { QueryClient } from '@tanstack/react-query';
import type { FleetEvent, Instance } from '../api/types';

const FEED_SIZE = 200;
let feed: FleetEvent[] = [];
let connected = false;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());
const subscribe = (l: () => void) => { listeners.add(l); return () => listeners.delete(l); };

export function useFeed(): FleetEvent[] {
  return useSyncExternalStore(subscribe, () => feed);
}
export function useLiveConnected(): boolean {
  return useSyncExternalStore(subscribe, () => connected);
}

/** Apply one `instance.state` event to a cached instance row. */
export function applyState(row: Instance, ev: FleetEvent): Instance {
  const d = ev.data as Record<string, unknown>;
  const next = String(d.new ?? row.state);
  const running = next === 'STARTING' || next === 'RUNNING';
  return {
    ...row,
    state: next,
    pid: (d.pid as number | null | undefined) ?? (running ? row.pid : null),
    restart_count: typeof d.restart_count === 'number' ? d.restart_count : row.restart_count,
    exit_code: d.exit_code !== undefined ? (d.exit_code as number | null) : row.exit_code,
    exit_signal: d.exit_signal !== undefined ? (d.exit_signal as string | null) : row.exit_signal,
    state_reason: typeof d.reason === 'string' ? d.reason : row.state_reason,
    state_changed_at: ev.time,
    started_at: next === 'STARTING' || (next === 'RUNNING' && !row.started_at) ? ev.time : running ? row.started_at : row.started_at,
  };
}

export function useFleetEvents(qc: QueryClient, enabled: boolean): void {
  useEffect(() => {
    if (!enabled) return;
    const stale = new Set<string>();
    const timer = setInterval(() => {
      for (const key of stale) qc.invalidateQueries({ queryKey: JSON.parse(key) });
      stale.clear();
    }, 1000);
    const mark = (...key: unknown[]) => stale.add(JSON.stringify(key));
    const source = new EventSource('/api/v1/events', { withCredentials: true });
    source.onopen = () => { connected = true; emit(); };
    source.onerror = () => { connected = false; emit(); };
    const onEvent = (msg: MessageEvent<string>) => {
      let ev: FleetEvent;
      try { ev = JSON.parse(msg.data); } catch { return; }
      feed = [ev, ...feed].slice(0, FEED_SIZE);
      emit();
      if (ev.kind === 'instance.state' && ev.instance_id) {
        const id = ev.instance_id;
        qc.setQueryData<Instance[]>(['instances'], (rows) => rows?.map((r) => (r.id === id ? applyState(r, ev) : r)));
        qc.setQueryData<Instance>(['instance', id], (row) => (row ? applyState(row, ev) : row));
        mark('instance-events', id);
        mark('hosts');
      } else if (ev.kind.startsWith('instance.')) {
        mark('instances');
        if (ev.instance_id) mark('instance', ev.instance_id);
        mark('hosts');
      } else if (ev.kind.startsWith('job.')) {
        mark('jobs');
        if (ev.job_id) mark('job', ev.job_id);
      } else if (ev.kind.startsWith('host.')) {
        mark('hosts');
      }
    };
    source.onmessage = onEvent;
    const kinds = ['instance.state', 'instance.created', 'instance.updated', 'instance.config', 'instance.deleted',
      'instance.command', 'job.status', 'job.progress', 'job.created', 'job.cancel', 'host.status', 'host.created',
      'host.updated', 'host.provision'];
    kinds.forEach((k) => source.addEventListener(k, onEvent as EventListener));
    return () => {
      source.close();
      clearInterval(timer);
      connected = false;
      emit();
    };
  }, [qc, enabled]);
}
