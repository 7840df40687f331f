/** Two job results side by side. Backtests: their metrics in one table with the change from the
 * first to the second, and both balance/equity charts. Optimizations: both Pareto fronts in one
 * chart and their members side by side (ParetoCompare). */
import { Link } from 'react-router-dom';
import { Paper, SimpleGrid, Table, Text, Title } from '@mantine/core';
import { useQueries } from '@tanstack/react-query';
import { api, call } from '../api/client';
import type { JobDetail } from '../api/types';
import { equityArtifact, formatNumber, numericMetrics } from '../lib/jobs';
import { paretoOf } from '../lib/pareto';
import { EquityChart } from './EquityChart';
import { ParetoCompare } from './ParetoCompare';

type Result = { summary?: Record<string, unknown>; artifacts?: string[] } | null;

/** The change from the first result to the second, signed, with its relative size. */
export function delta(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return '—';
  const d = b - a;
  const rel = a !== 0 ? ` (${d >= 0 ? '+' : ''}${((100 * d) / Math.abs(a)).toFixed(0)}%)` : '';
  return `${d >= 0 ? '+' : ''}${formatNumber(d)}${rel}`;
}

/** Fetches the two jobs (`ids`, in the order ticked) and shows their comparison. */
export function JobCompare({ ids }: { ids: [string, string] }) {
  const jobs = useQueries({ queries: ids.map((id) => ({ queryKey: ['job', id], queryFn: () => call(api.GET('/api/v1/jobs/{job_id}', { params: { path: { job_id: id } } })) as Promise<JobDetail> })) });
  return <CompareView ids={ids} jobs={jobs.map((q) => q.data ?? null)} />;
}

/** The comparison of two jobs already read (`null`: not read yet). */
export function CompareView({ ids, jobs, chartWidth }: { ids: [string, string]; jobs: (Pick<JobDetail, 'id' | 'kind' | 'status' | 'result'> | null)[]; chartWidth?: number }) {
  const results = jobs.map((j) => (j?.result ?? null) as Result);
  const fronts = results.map((r) => paretoOf(r?.summary));
  const optimizes = jobs.filter((j) => j?.kind === 'optimize').length;
  if (optimizes === 2) {
    return (
      <Paper withBorder p="md" data-testid="compare">
        <Title order={4} mb="xs">Compare optimizations</Title>
        {fronts[0] && fronts[1]
          ? <ParetoCompare fronts={[{ jobId: ids[0], members: fronts[0] }, { jobId: ids[1], members: fronts[1] }]} chartWidth={chartWidth} />
          : <Text size="sm" c="dimmed">The Pareto fronts appear here once both optimizations have succeeded ({ids.map((id, i) => `${id.slice(0, 8)}: ${jobs[i]?.status ?? 'loading'}`).join(', ')}).</Text>}
      </Paper>
    );
  }
  const metrics = results.map((r) => numericMetrics(r?.summary));
  const equities = results.map((r) => equityArtifact(r?.artifacts, r?.summary?.results_dir));
  const keys = [...new Set(metrics.flatMap((m) => Object.keys(m)))].sort();
  return (
    <Paper withBorder p="md" data-testid="compare">
      <Title order={4} mb="xs">Compare results</Title>
      {optimizes === 1 && <Text size="sm" c="dimmed" mb="xs">One of these is an optimization: tick two optimizations to compare their Pareto fronts, or two backtests to compare metrics.</Text>}
      {keys.length === 0 ? <Text size="sm" c="dimmed">These jobs have no metrics yet (only finished backtests have them).</Text> : (
        <Table fz="xs" striped>
          <Table.Thead><Table.Tr><Table.Th>Metric</Table.Th>{ids.map((id) => <Table.Th key={id} ta="right"><Link to={`/jobs/${id}`}>{id.slice(0, 8)}</Link></Table.Th>)}<Table.Th ta="right">second − first</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {keys.map((k) => (
              <Table.Tr key={k}><Table.Td>{k}</Table.Td>{metrics.map((m, i) => <Table.Td key={i} ta="right" ff="monospace">{formatNumber(m[k])}</Table.Td>)}<Table.Td ta="right" ff="monospace" c="dimmed">{delta(metrics[0][k], metrics[1]?.[k])}</Table.Td></Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {equities.some(Boolean) && (
        <SimpleGrid cols={2} mt="sm">
          {ids.map((id, i) => equities[i] ? <EquityChart key={id} jobId={id} name={equities[i]!} title={`Balance and equity · ${id.slice(0, 8)}`} height={200} />
            : <Text key={id} size="sm" c="dimmed">{id.slice(0, 8)}: no balance/equity series (only finished backtests have one).</Text>)}
        </SimpleGrid>
      )}
    </Paper>
  );
}
