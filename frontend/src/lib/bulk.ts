/** Start/stop/restart many instances with `POST /api/v1/instances/bulk` (at most 1,000 ids a
 * call), reporting each row's outcome as the api gives it. */
import { api, call } from '../api/client';
import { problemOf } from './problem';

export type BulkOutcome = { status: 'pending' } | { status: 'ok' } | { status: 'error'; detail: string };
export type BulkAction = 'start' | 'stop' | 'restart';

const CHUNK = 1000;

export async function runBulk(ids: readonly string[], action: BulkAction, report: (id: string, outcome: BulkOutcome) => void): Promise<void> {
  ids.forEach((id) => report(id, { status: 'pending' }));
  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = ids.slice(i, i + CHUNK);
    try {
      const results = await call(api.POST('/api/v1/instances/bulk', { body: { action, ids: chunk } }));
      for (const r of results) report(r.id, r.ok ? { status: 'ok' } : { status: 'error', detail: r.detail ?? `failed (${r.status ?? '?'})` });
    } catch (e) {
      const detail = problemOf(e)?.detail ?? String(e);
      chunk.forEach((id) => report(id, { status: 'error', detail }));
    }
  }
}
