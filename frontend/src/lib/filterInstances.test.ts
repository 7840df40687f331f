import { describe, expect, it } from 'vitest';
import type { Instance } from '../api/types';
import { filterInstances, sortInstances } from './filterInstances';

const make = (i: number, over: Partial<Instance> = {}): Instance => ({
  id: `id-${i}`, name: `bot-${i}`, host_id: i % 2 ? 'h1' : 'h2', profile: i % 3 ? 'passivbot-v8' : 'passivbot-v7',
  simulated: true, argv: null, labels: { desk: i % 4 ? 'a' : 'b' }, env: {}, supervision: {}, desired_state: 'running',
  generation: 1, config_version: 1, state: i % 5 ? 'RUNNING' : 'FATAL', pid: null, started_at: null, uptime: i,
  state_changed_at: null, state_reason: '', restart_count: i % 7, exit_code: null, exit_signal: null,
  created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', ...over,
});
const fleet = Array.from({ length: 1000 }, (_, i) => make(i));
const hosts = { h1: 'local', h2: 'vps-1' };

describe('filterInstances', () => {
  it('filters 1,000 rows by host name, state, profile, label and text together', () => {
    const rows = filterInstances(fleet, { host: 'local', state: 'FATAL', profile: 'passivbot-v8', label: 'desk=a', text: 'BOT-1' }, hosts);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.host_id).toBe('h1');
      expect(r.state).toBe('FATAL');
      expect(r.profile).toBe('passivbot-v8');
      expect(r.labels.desk).toBe('a');
      expect(r.name.startsWith('bot-1')).toBe(true);
    }
    const expected = fleet.filter((r) => r.host_id === 'h1' && r.state === 'FATAL' && r.profile === 'passivbot-v8' && r.labels.desk === 'a' && r.name.includes('bot-1'));
    expect(rows.map((r) => r.id)).toEqual(expected.map((r) => r.id));
  });

  it('matches a label by key alone, and no filter keeps every row', () => {
    expect(filterInstances(fleet, { label: 'desk' })).toHaveLength(1000);
    expect(filterInstances(fleet, { label: 'team' })).toHaveLength(0);
    expect(filterInstances(fleet, {})).toHaveLength(1000);
  });
});

describe('sortInstances', () => {
  it('sorted once then filtered (as the table does) gives the rows and order of filtered then sorted', () => {
    const sort = { key: 'state' as const, desc: true };
    const filter = { host: 'vps-1', text: 'bot-2' };
    const once = filterInstances(sortInstances(fleet, sort, hosts), filter, hosts);
    expect(once.length).toBeGreaterThan(1);
    expect(once.map((r) => r.id)).toEqual(sortInstances(filterInstances(fleet, filter, hosts), sort, hosts).map((r) => r.id));
  });

  it('sorts names numerically and by uptime descending', () => {
    const few = [make(10), make(2), make(1)];
    expect(sortInstances(few, { key: 'name', desc: false }).map((r) => r.name)).toEqual(['bot-1', 'bot-2', 'bot-10']);
    expect(sortInstances(few, { key: 'uptime', desc: true }).map((r) => r.uptime)).toEqual([10, 2, 1]);
    expect(sortInstances(few, { key: 'host', desc: false }, hosts)[0].host_id).toBe('h1');
  });
});
