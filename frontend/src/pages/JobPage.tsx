import { useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { Anchor, Button, Group, Image, Paper, Progress, Select, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { CartesianGrid, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis } from 'recharts';
import { useQueryClient } from '@tanstack/react-query';
import { api, artifact, artifactUrl, call } from '../api/client';
import { useJob } from '../api/queries';
import { ACTIVE_JOB, formatDuration, formatTime } from '../lib/states';
import { equityArtifact, etaSeconds, formatNumber, numericMetrics } from '../lib/jobs';
import { defaultAxes, memberMetrics, metricKeys, paretoOf, points, type Member } from '../lib/pareto';
import { EquityChart } from '../components/EquityChart';
import { JobStatusBadge } from '../components/StateBadge';
import { ProblemAlert } from '../components/ProblemAlert';
import { PREFILL_KEY } from './InstanceNew';

function Pareto({ jobId, members, profile, simulated }: { jobId: string; members: Member[]; profile: string; simulated: boolean }) {
  const rows = useMemo(() => members.map((m) => ({ m, x: memberMetrics(m) })), [members]);
  const keys = useMemo(() => metricKeys(rows.map((r) => r.x)), [rows]);
  const [xKey, setX] = useState<string | null>(null);
  const [yKey, setY] = useState<string | null>(null);
  const [picked, setPicked] = useState<Member | null>(null);
  const [error, setError] = useState<unknown>(null);
  const navigate = useNavigate();
  const [xDefault, yDefault] = defaultAxes(keys);
  const xk = xKey ?? xDefault;
  const yk = yKey ?? yDefault;
  const data = points(rows, xk, yk);
  const create = async (m: Member) => {
    setError(null);
    try {
      const config = await artifact(jobId, m.config_path);
      sessionStorage.setItem(PREFILL_KEY, JSON.stringify({ config_text: JSON.stringify(config, null, 2), name: `pareto-${m.hash.slice(0, 8)}`, profile, simulated }));
      navigate('/instances/new');
    } catch (e) {
      setError(e);
    }
  };
  if (!members.length) return <Text size="sm" c="dimmed">The optimization found no Pareto member.</Text>;
  return (
    <Paper withBorder p="md">
      <Group justify="space-between" mb="xs">
        <Title order={4}>Pareto front ({members.length})</Title>
        <Group gap="xs">
          <Select size="xs" label="x" data={keys} value={xk} onChange={setX} w={200} />
          <Select size="xs" label="y" data={keys} value={yk} onChange={setY} w={200} />
        </Group>
      </Group>
      {data.length > 0 ? (
        <div style={{ height: 300 }} data-testid="pareto-chart">
          <ResponsiveContainer>
            <ScatterChart margin={{ top: 10, right: 20, bottom: 20, left: 10 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="var(--mantine-color-default-border)" />
              <XAxis type="number" dataKey="x" name={xk} label={{ value: xk, position: 'insideBottom', offset: -10, fill: 'var(--mantine-color-dimmed)' }} domain={['auto', 'auto']} tick={{ fill: 'var(--mantine-color-dimmed)' }} />
              <YAxis type="number" dataKey="y" name={yk} domain={['auto', 'auto']} tick={{ fill: 'var(--mantine-color-dimmed)' }} />
              <Tooltip cursor={{ strokeDasharray: '3 3' }} />
              <Scatter data={data} fill="var(--mantine-color-indigo-6)" onClick={(p) => { const hash = (p as { payload?: { hash?: string } }).payload?.hash; setPicked(members.find((m) => m.hash === hash) ?? null); }} cursor="pointer" />
            </ScatterChart>
          </ResponsiveContainer>
        </div>
      ) : <Text size="sm" c="dimmed">The members carry no numeric metrics to plot; pick one below.</Text>}
      <Table fz="xs" mt="sm" highlightOnHover>
        <Table.Thead><Table.Tr><Table.Th>Member</Table.Th><Table.Th>{xk}</Table.Th><Table.Th>{yk}</Table.Th><Table.Th /></Table.Tr></Table.Thead>
        <Table.Tbody>
          {rows.map(({ m, x }) => (
            <Table.Tr key={m.hash} bg={picked?.hash === m.hash ? 'var(--mantine-color-indigo-light)' : undefined}>
              <Table.Td><Anchor href={artifactUrl(jobId, m.config_path)} target="_blank">{m.hash.slice(0, 12)}</Anchor></Table.Td>
              <Table.Td>{formatNumber(x[xk])}</Table.Td><Table.Td>{formatNumber(x[yk])}</Table.Td>
              <Table.Td><Button size="compact-xs" variant="light" onClick={() => create(m)}>Create instance from this config</Button></Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <ProblemAlert error={error} />
    </Paper>
  );
}

/** The result's metrics, one column per exchange when the backtest ran on several. */
function MetricsTable({ metrics, runs }: { metrics: Record<string, number>; runs: Record<string, unknown>[] | null }) {
  const cols = runs ? runs.map((r) => ({ name: String(r.exchange ?? '?'), m: numericMetrics(r) })) : [{ name: 'value', m: metrics }];
  const keys = [...new Set(cols.flatMap((c) => Object.keys(c.m)))].sort();
  return (
    <Paper withBorder p="md">
      <Title order={4} mb="xs">Metrics</Title>
      <Table fz="xs" striped highlightOnHover data-testid="metrics">
        <Table.Thead><Table.Tr><Table.Th>Metric</Table.Th>{cols.map((c) => <Table.Th key={c.name} ta="right">{c.name}</Table.Th>)}</Table.Tr></Table.Thead>
        <Table.Tbody>
          {keys.map((k) => <Table.Tr key={k}><Table.Td>{k}</Table.Td>{cols.map((c) => <Table.Td key={c.name} ta="right" ff="monospace">{formatNumber(c.m[k])}</Table.Td>)}</Table.Tr>)}
        </Table.Tbody>
      </Table>
    </Paper>
  );
}

export default function JobPage() {
  const { id = '' } = useParams();
  const job = useJob(id);
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const j = job.data;
  if (job.error) return <ProblemAlert error={job.error} />;
  if (!j) return <Text>Loading…</Text>;
  const result = (j.result ?? {}) as { summary?: Record<string, unknown>; artifacts?: string[] };
  const metrics = numericMetrics(result.summary);
  const pareto = paretoOf(result.summary);
  const plots = (result.artifacts ?? []).filter((a) => /\.(png|svg|jpe?g)$/i.test(a));
  const equity = equityArtifact(result.artifacts, result.summary?.results_dir);
  const runs = Array.isArray(result.summary?.runs) ? (result.summary.runs as Record<string, unknown>[]) : null;
  const cancel = async () => {
    setError(null);
    try {
      await call(api.POST('/api/v1/jobs/{job_id}/cancel', { params: { path: { job_id: id } } }));
      qc.invalidateQueries({ queryKey: ['job', id] });
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Stack>
      <Group justify="space-between">
        <Group><Title order={2} data-testid="job-title">{j.kind} {j.id.slice(0, 8)}</Title><JobStatusBadge status={j.status} /></Group>
        {ACTIVE_JOB.has(j.status) && <Button color="red" variant="light" onClick={cancel} data-testid="job-cancel">Cancel</Button>}
      </Group>
      <ProblemAlert error={error} />
      {j.reason && <Text size="sm" c={j.status === 'failed' ? 'red' : 'dimmed'}>{j.reason}</Text>}
      <Paper withBorder p="md">
        <Group gap="xs"><Progress value={100 * j.progress} style={{ flex: 1 }} size="lg" aria-label="progress" data-testid="job-progress" data-value={j.progress} animated={j.status === 'running'} /><Text size="sm">{Math.round(100 * j.progress)}%</Text></Group>
        <SimpleGrid cols={{ base: 2, md: 5 }} mt="sm">
          <Text size="sm">Phase: {String(j.progress_detail?.phase ?? '—')}</Text>
          <Text size="sm">ETA: {formatDuration(etaSeconds(j))}</Text>
          <Text size="sm">Pareto front: {j.progress_detail?.front_size != null ? String(j.progress_detail.front_size) : '—'}</Text>
          <Text size="sm">Started: {formatTime(j.started_at)}</Text>
          <Text size="sm">Instance: {j.instance_id ? <Link to={`/instances/${j.instance_id}`}>{j.instance_id.slice(0, 8)}</Link> : '—'}</Text>
        </SimpleGrid>
        {Object.keys(j.overrides).length > 0 && <Text size="xs" c="dimmed" mt="xs">Overrides: {Object.entries(j.overrides).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}</Text>}
      </Paper>
      {Object.keys(metrics).length > 0 && <MetricsTable metrics={metrics} runs={runs} />}
      {equity && <EquityChart jobId={j.id} name={equity} />}
      {pareto && <Pareto jobId={j.id} members={pareto} profile={j.profile} simulated={j.simulated} />}
      {plots.length > 0 && (
        <Paper withBorder p="md">
          <Title order={4} mb="xs">Plots</Title>
          <SimpleGrid cols={{ base: 1, md: 2 }}>{plots.map((p) => <Image key={p} src={artifactUrl(j.id, p)} alt={p} />)}</SimpleGrid>
        </Paper>
      )}
      {(result.artifacts?.length ?? 0) > 0 && (
        <Paper withBorder p="md">
          <Title order={4} mb="xs">Artifacts</Title>
          <Stack gap={2}>{result.artifacts!.map((a) => <Anchor key={a} size="xs" href={artifactUrl(j.id, a)} download>{a}</Anchor>)}</Stack>
        </Paper>
      )}
    </Stack>
  );
}
