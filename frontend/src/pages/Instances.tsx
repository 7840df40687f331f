import { memo, useCallback, useMemo, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { Box, Button, Checkbox, Group, Select, Stack, Text, TextInput, Title, UnstyledButton } from '@mantine/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { hostNames, useHosts, useInstances } from '../api/queries';
import { filterInstances, sortInstances, type Sort, type SortKey } from '../lib/filterInstances';
import { runBulk, type BulkOutcome } from '../lib/bulk';
import { STATES, formatDuration } from '../lib/states';
import type { Instance } from '../api/types';
import { STATE_COLOR } from '../lib/states';
import { Empty } from '../components/Empty';
import { ProblemAlert } from '../components/ProblemAlert';

const COLS: { key: SortKey | null; label: string; width: string }[] = [
  { key: null, label: '', width: '36px' },
  { key: 'name', label: 'Name', width: 'minmax(160px, 2fr)' },
  { key: 'state', label: 'State', width: '110px' },
  { key: 'host', label: 'Host', width: 'minmax(90px, 1fr)' },
  { key: 'profile', label: 'Profile', width: '120px' },
  { key: 'uptime', label: 'Uptime', width: '90px' },
  { key: 'restart_count', label: 'Restarts', width: '80px' },
  { key: null, label: 'Labels', width: 'minmax(100px, 1fr)' },
  { key: null, label: 'Last action', width: 'minmax(120px, 1.5fr)' },
];
const GRID = COLS.map((c) => c.width).join(' ');
const ROW = 36;

type Action = 'start' | 'stop' | 'restart';

export default function Instances() {
  const [params, setParams] = useSearchParams();
  const instances = useInstances();
  const hosts = useHosts();
  const names = useMemo(() => hostNames(hosts.data), [hosts.data]);
  const [sort, setSort] = useState<Sort>({ key: 'name', desc: false });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [results, setResults] = useState<Record<string, BulkOutcome>>({});
  const [busy, setBusy] = useState<Action | null>(null);
  const filter = {
    host: params.get('host'), state: params.get('state'), profile: params.get('profile'),
    label: params.get('label') ?? '', text: params.get('q') ?? '',
  };
  const setFilter = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value); else next.delete(key);
    setParams(next, { replace: true });
  };
  // Sorted once per data or sort change; a keystroke in a filter only filters (order is kept).
  const sorted = useMemo(() => sortInstances(instances.data ?? [], sort, names), [instances.data, names, sort]);
  const rows = useMemo(
    () => filterInstances(sorted, filter, names),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [sorted, names, filter.host, filter.state, filter.profile, filter.label, filter.text],
  );
  const profiles = useMemo(() => [...new Set((instances.data ?? []).map((i) => i.profile))].sort(), [instances.data]);
  const visibleSelected = rows.filter((r) => selected.has(r.id));
  const allSelected = rows.length > 0 && visibleSelected.length === rows.length;

  const toggle = useCallback((id: string) => setSelected((s) => { const n = new Set(s); if (n.has(id)) n.delete(id); else n.add(id); return n; }), []);
  const bulk = async (action: Action) => {
    setBusy(action);
    setResults(Object.fromEntries(visibleSelected.map((r) => [r.id, { status: 'pending' } as BulkOutcome])));
    const ids = visibleSelected.map((r) => r.id);
    const outcomes: Record<string, BulkOutcome> = {};
    await runBulk(ids, action, (id, outcome) => { outcomes[id] = outcome; });
    setResults(outcomes);
    setBusy(null);
  };
  const outcomes = Object.values(results);
  const failed = outcomes.filter((o) => o.status === 'error').length;

  return (
    <Stack h="calc(100vh - 90px)">
      <Group justify="space-between">
        <Title order={2}>Instances</Title>
        <Button component={Link} to="/instances/new">New instance</Button>
      </Group>
      <Group gap="xs" align="end" role="search">
        <TextInput label="Search" placeholder="name, id or label value" value={filter.text} onChange={(e) => setFilter('q', e.currentTarget.value)} w={200} data-testid="filter-text" />
        <Select label="State" data={[...STATES]} value={filter.state} onChange={(v) => setFilter('state', v)} clearable w={130} data-testid="filter-state" />
        <Select label="Host" data={(hosts.data ?? []).map((h) => h.name)} value={filter.host} onChange={(v) => setFilter('host', v)} clearable w={130} />
        <Select label="Profile" data={profiles} value={filter.profile} onChange={(v) => setFilter('profile', v)} clearable w={150} />
        <TextInput label="Label" placeholder="key or key=value" value={filter.label} onChange={(e) => setFilter('label', e.currentTarget.value)} w={150} />
      </Group>
      <Group gap="xs">
        <Text size="sm" data-testid="counts">{rows.length} shown of {instances.data?.length ?? 0} · {visibleSelected.length} selected</Text>
        {(['start', 'stop', 'restart'] as Action[]).map((a) => (
          <Button key={a} size="xs" variant={a === 'stop' ? 'light' : 'default'} color={a === 'stop' ? 'red' : undefined}
            disabled={!visibleSelected.length || !!busy} loading={busy === a} onClick={() => bulk(a)} data-testid={`bulk-${a}`}>
            {a[0].toUpperCase() + a.slice(1)} selected
          </Button>
        ))}
        {outcomes.length > 0 && (
          <Text size="sm" c={failed ? 'red' : 'dimmed'} data-testid="bulk-summary">
            {outcomes.filter((o) => o.status === 'ok').length} done, {failed} failed, {outcomes.filter((o) => o.status === 'pending').length} pending
          </Text>
        )}
      </Group>
      <ProblemAlert error={instances.error} />
      {instances.data && instances.data.length === 0 ? (
        <Empty title="No instances yet">Create one with <Link to="/instances/new">New instance</Link>: pick a profile, a host and a passivbot config (upload a file or start from an example).</Empty>
      ) : (
        <Box role="table" aria-label="Instances" aria-rowcount={rows.length} style={{ flex: 1, minHeight: 200, display: 'flex', flexDirection: 'column', border: '1px solid var(--mantine-color-default-border)', borderRadius: 4 }}>
          <Box role="row" style={{ display: 'grid', gridTemplateColumns: GRID, alignItems: 'center', height: ROW, padding: '0 8px', borderBottom: '1px solid var(--mantine-color-default-border)', fontWeight: 600, fontSize: 13 }}>
            {COLS.map((c, i) => (
              <div role="columnheader" key={i} aria-sort={c.key && sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : undefined}>
                {i === 0 ? (
                  <Checkbox aria-label="Select all shown" checked={allSelected} indeterminate={!allSelected && visibleSelected.length > 0}
                    onChange={() => setSelected(allSelected ? new Set() : new Set(rows.map((r) => r.id)))} data-testid="select-all" />
                ) : c.key ? (
                  <UnstyledButton fz={13} fw={600} onClick={() => setSort((s) => ({ key: c.key!, desc: s.key === c.key ? !s.desc : false }))}>
                    {c.label}{sort.key === c.key ? (sort.desc ? ' ▼' : ' ▲') : ''}
                  </UnstyledButton>
                ) : c.label}
              </div>
            ))}
          </Box>
          <InstanceRows rows={rows} selected={selected} results={results} names={names} toggle={toggle} />
        </Box>
      )}
    </Stack>
  );
}

const CELL = { overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' } as const;
const ROW_STYLE = { position: 'absolute', top: 0, left: 0, right: 0, height: ROW, display: 'grid', gridTemplateColumns: GRID, alignItems: 'center', padding: '0 8px', fontSize: 13, borderBottom: '1px solid var(--mantine-color-default-border)' } as const;

/** One table row: plain elements (no component library) and memoized, so scrolling 1,000
 * rows only mounts the few rows that come into view. */
const InstanceRow = memo(function InstanceRow({ r, start, checked, res, host, toggle }: {
  r: Instance; start: number; checked: boolean; res: BulkOutcome | undefined; host: string; toggle: (id: string) => void;
}) {
  const color = STATE_COLOR[r.state] ?? 'gray';
  return (
    <div role="row" data-testid="instance-row" data-name={r.name} style={{ ...ROW_STYLE, transform: `translateY(${start}px)` }}>
      <div role="cell"><input type="checkbox" aria-label={`Select ${r.name}`} checked={checked} onChange={() => toggle(r.id)} /></div>
      <div role="cell" style={CELL}>
        <Link to={`/instances/${r.id}`}>{r.name}</Link>
        {r.simulated ? <span style={{ color: 'var(--mantine-color-dimmed)', fontSize: 11 }}> (simulated)</span> : null}
      </div>
      <div role="cell"><span data-testid="state" style={{ color: `var(--mantine-color-${color}-light-color)`, background: `var(--mantine-color-${color}-light)`, borderRadius: 10, padding: '1px 8px', fontSize: 11, fontWeight: 700 }}>{r.state}</span></div>
      <div role="cell" style={CELL}>{host}</div>
      <div role="cell">{r.profile}</div>
      <div role="cell">{formatDuration(r.uptime)}</div>
      <div role="cell">{r.restart_count}</div>
      <div role="cell" style={CELL}>{Object.entries(r.labels).map(([k, val]) => `${k}=${val}`).join(' ')}</div>
      <div role="cell" data-testid="row-result" style={{ ...CELL, fontSize: 12 }} title={res?.status === 'error' ? res.detail : undefined}>
        {res?.status === 'error' ? <span style={{ color: 'var(--mantine-color-red-text)' }}>✗ {res.detail}</span>
          : res?.status === 'ok' ? <span style={{ color: 'var(--mantine-color-green-text)' }}>✓ accepted</span>
          : res?.status === 'pending' ? <span style={{ color: 'var(--mantine-color-dimmed)' }}>…</span> : null}
      </div>
    </div>
  );
});

/** The virtualized body: its own component, so a scroll re-renders only the rows. */
const InstanceRows = memo(function InstanceRows({ rows, selected, results, names, toggle }: {
  rows: Instance[]; selected: Set<string>; results: Record<string, BulkOutcome>; names: Record<string, string>; toggle: (id: string) => void;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => ROW, overscan: 8 });
  return (
    <div ref={scroller} style={{ flex: 1, overflow: 'auto', contain: 'strict' }} data-testid="instances-scroller">
      {rows.length === 0 ? <Text p="md" c="dimmed">No instance matches these filters: clear a filter above.</Text> : (
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((v) => {
            const r = rows[v.index];
            return <InstanceRow key={r.id} r={r} start={v.start} checked={selected.has(r.id)} res={results[r.id]} host={names[r.host_id] ?? r.host_id.slice(0, 8)} toggle={toggle} />;
          })}
        </div>
      )}
    </div>
  );
});
