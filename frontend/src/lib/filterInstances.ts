/** Client-side filtering and sorting of the instances table (the whole fleet is loaded:
 * 1,000 rows filter in well under a millisecond, faster than a round trip). */
import type { Instance } from '../api/types';

export interface InstanceFilter {
  host?: string | null;
  state?: string | null;
  profile?: string | null;
  /** `key` or `key=value` (like the api's `label` parameter). */
  label?: string;
  /** Text in the name, id or a label value (case-insensitive). */
  text?: string;
}

export type SortKey = 'name' | 'state' | 'host' | 'profile' | 'uptime' | 'restart_count' | 'updated_at';
export interface Sort { key: SortKey; desc: boolean }

function labelMatches(labels: Record<string, unknown>, query: string): boolean {
  const [k, ...rest] = query.split('=');
  const key = k.trim();
  if (!key) return true;
  if (!(key in labels)) return false;
  return rest.length === 0 || String(labels[key]) === rest.join('=').trim();
}

export function filterInstances(rows: readonly Instance[], f: InstanceFilter, hostNames: Record<string, string> = {}): Instance[] {
  const text = f.text?.trim().toLowerCase() ?? '';
  const label = f.label?.trim() ?? '';
  return rows.filter((r) => {
    if (f.state && r.state !== f.state) return false;
    if (f.profile && r.profile !== f.profile) return false;
    if (f.host && r.host_id !== f.host && hostNames[r.host_id] !== f.host) return false;
    if (label && !labelMatches(r.labels, label)) return false;
    if (text) {
      const hay = `${r.name} ${r.id} ${Object.values(r.labels).join(' ')}`.toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  });
}

/** One collator for every comparison: `localeCompare` with options builds a new one per call. */
const collator = new Intl.Collator(undefined, { numeric: true });

export function sortInstances(rows: Instance[], sort: Sort, hostNames: Record<string, string> = {}): Instance[] {
  const value = (r: Instance): string | number => {
    switch (sort.key) {
      case 'host': return hostNames[r.host_id] ?? r.host_id;
      case 'uptime': return r.uptime ?? -1;
      case 'restart_count': return r.restart_count;
      default: return String(r[sort.key] ?? '');
    }
  };
  const dir = sort.desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const va = value(a), vb = value(b);
    const c = typeof va === 'number' && typeof vb === 'number' ? va - vb : collator.compare(String(va), String(vb));
    return c * dir || collator.compare(a.name, b.name);
  });
}
