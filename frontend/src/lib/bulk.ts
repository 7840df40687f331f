/** Run one api action on many instances, a few at a time, reporting each row's outcome (there
 * is no bulk endpoint; per-row results are what the user needs anyway). */
import { problemOf } from './problem';

export type BulkOutcome = { status: 'pending' } | { status: 'ok' } | { status: 'error'; detail: string };

export async function runBulk(ids: readonly string[], action: (id: string) => Promise<unknown>,
  report: (id: string, outcome: BulkOutcome) => void, concurrency = 8): Promise<void> {
  let next = 0;
  ids.forEach((id) => report(id, { status: 'pending' }));
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        await action(id);
        report(id, { status: 'ok' });
      } catch (e) {
        report(id, { status: 'error', detail: problemOf(e)?.detail ?? String(e) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
}
