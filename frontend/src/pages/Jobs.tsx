import { useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { Button, Checkbox, Group, NumberInput, Paper, Progress, SegmentedControl, Select, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { useInstances, useJobs } from '../api/queries';
import { ACTIVE_JOB, formatDuration, formatTime } from '../lib/states';
import { etaSeconds, overridesOf, type JobForm } from '../lib/jobs';
import { JobCompare } from '../components/JobCompare';
import { useDraft } from '../lib/draft';
import { problemAt, problemOf } from '../lib/problem';
import { JobStatusBadge } from '../components/StateBadge';
import { ProblemAlert } from '../components/ProblemAlert';
import { Empty } from '../components/Empty';

interface Draft extends JobForm { kind: string; instance: string | null }
const EMPTY: Draft = { kind: 'backtest', instance: null, start_date: '', end_date: '', exchanges: '', iters: '', n_cpus: '' };

function NewJob() {
  const [params] = useSearchParams();
  const instances = useInstances();
  const [form, setForm, clear] = useDraft<Draft>('job-new', { ...EMPTY, instance: params.get('instance') });
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setForm((f) => ({ ...f, [k]: v }));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const instance = form.instance ?? params.get('instance');
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const job = await call(api.POST('/api/v1/jobs', { body: { kind: form.kind as 'backtest' | 'optimize', instance_id: instance, overrides: overridesOf(form.kind, form) } }));
      clear();
      qc.invalidateQueries({ queryKey: ['jobs'] });
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const p = problemOf(error);
  const overrideErr = (k: string) => problemAt(p, k) ?? (p?.detail.includes(k) ? p.detail : undefined);
  return (
    <Paper withBorder p="md">
      <form onSubmit={submit} aria-label="New job">
        <Stack gap="xs">
          <Group justify="space-between"><Title order={4}>New backtest or optimize</Title>
            <SegmentedControl value={form.kind} onChange={(v) => set('kind', v)} data={[{ value: 'backtest', label: 'Backtest' }, { value: 'optimize', label: 'Optimize' }]} data-testid="job-kind" />
          </Group>
          <Select label="From the config of instance" required searchable data={(instances.data ?? []).map((i) => ({ value: i.id, label: `${i.name} (${i.profile}${i.simulated ? ', simulated' : ''})` }))}
            value={instance} onChange={(v) => set('instance', v)} error={problemAt(p, 'instance_id')} data-testid="job-instance"
            nothingFoundMessage="No instance: create one first" />
          <SimpleGrid cols={{ base: 2, md: 5 }}>
            <TextInput label="Start date" placeholder="2024-01-01" value={form.start_date} onChange={(e) => set('start_date', e.currentTarget.value)} error={overrideErr('backtest.start_date')} />
            <TextInput label="End date" placeholder="now" value={form.end_date} onChange={(e) => set('end_date', e.currentTarget.value)} error={overrideErr('backtest.end_date')} />
            <TextInput label="Exchanges" placeholder="binance bybit" value={form.exchanges} onChange={(e) => set('exchanges', e.currentTarget.value)} error={overrideErr('backtest.exchanges')} />
            <NumberInput label="Iterations" disabled={form.kind !== 'optimize'} min={1} value={form.iters} onChange={(v) => set('iters', String(v ?? ''))} error={overrideErr('optimize.iters')} data-testid="job-iters" />
            <NumberInput label="CPUs" min={1} value={form.n_cpus} onChange={(v) => set('n_cpus', String(v ?? ''))} error={overrideErr('optimize.n_cpus')} />
          </SimpleGrid>
          <ProblemAlert error={error} />
          <Group><Button type="submit" loading={busy} disabled={!instance} data-testid="job-submit">Queue {form.kind}</Button></Group>
        </Stack>
      </form>
    </Paper>
  );
}

export default function Jobs() {
  const jobs = useJobs();
  const instances = useInstances();
  const [error, setError] = useState<unknown>(null);
  const [compare, setCompare] = useState<string[]>([]);
  const names = useMemo(() => Object.fromEntries((instances.data ?? []).map((i) => [i.id, i.name])), [instances.data]);
  const qc = useQueryClient();
  const cancel = async (id: string) => {
    setError(null);
    try {
      await call(api.POST('/api/v1/jobs/{job_id}/cancel', { params: { path: { job_id: id } } }));
      qc.invalidateQueries({ queryKey: ['jobs'] });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Stack>
      <Title order={2}>Jobs</Title>
      <NewJob />
      <ProblemAlert error={jobs.error || error} onClose={error ? () => setError(null) : undefined} />
      {jobs.data && jobs.data.length === 0 ? <Empty title="No jobs yet">Queue a backtest or an optimize above from an instance's config.</Empty> : (
        <Paper withBorder>
          <Table fz="sm" highlightOnHover data-testid="jobs-table">
            <Table.Thead><Table.Tr><Table.Th>Compare</Table.Th><Table.Th>Job</Table.Th><Table.Th>Instance</Table.Th><Table.Th>Status</Table.Th><Table.Th w={220}>Progress</Table.Th><Table.Th>ETA</Table.Th><Table.Th>Pareto front</Table.Th><Table.Th>Created</Table.Th><Table.Th /></Table.Tr></Table.Thead>
            <Table.Tbody>
              {(jobs.data ?? []).map((j) => (
                <Table.Tr key={j.id} data-testid="job-row">
                  <Table.Td><Checkbox aria-label={`Compare ${j.id}`} checked={compare.includes(j.id)} onChange={() => setCompare((c) => (c.includes(j.id) ? c.filter((x) => x !== j.id) : [...c, j.id].slice(-2)))} /></Table.Td>
                  <Table.Td><Link to={`/jobs/${j.id}`}>{j.kind} {j.id.slice(0, 8)}</Link>{j.simulated ? <Text span size="xs" c="dimmed"> (simulated)</Text> : null}</Table.Td>
                  <Table.Td>{j.instance_id ? <Link to={`/instances/${j.instance_id}`}>{names[j.instance_id] ?? j.instance_id.slice(0, 8)}</Link> : '—'}</Table.Td>
                  <Table.Td><JobStatusBadge status={j.status} />{j.reason ? <Text size="xs" c="dimmed" lineClamp={1}>{j.reason}</Text> : null}</Table.Td>
                  <Table.Td><Group gap={6} wrap="nowrap"><Progress value={100 * j.progress} w={140} aria-label="progress" animated={j.status === 'running'} /><Text size="xs">{Math.round(100 * j.progress)}%</Text></Group><Text size="xs" c="dimmed">{String(j.progress_detail?.phase ?? '')}</Text></Table.Td>
                  <Table.Td>{formatDuration(etaSeconds(j))}</Table.Td>
                  <Table.Td>{j.progress_detail?.front_size != null ? String(j.progress_detail.front_size) : '—'}</Table.Td>
                  <Table.Td>{formatTime(j.created_at)}</Table.Td>
                  <Table.Td>{ACTIVE_JOB.has(j.status) && <Button size="compact-xs" color="red" variant="light" onClick={() => cancel(j.id)} data-testid="job-cancel">Cancel</Button>}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Paper>
      )}
      {compare.length === 2 ? <JobCompare ids={compare as [string, string]} /> : <Text size="xs" c="dimmed">Tick two jobs to compare their results side by side.</Text>}
    </Stack>
  );
}
