/** Two optimize results side by side: both Pareto fronts in one scatter chart (one series per
 * job, told apart by colour *and* marker shape, so it reads in both themes and without colour
 * vision) and each front's members in its own table, on the same two metrics. */
import { useMemo, useState } from 'react';
import { Link } from 'react-router-dom';
import { Anchor, Group, Select, SimpleGrid, Table, Text, Title, useComputedColorScheme } from '@mantine/core';
import { CartesianGrid, Legend, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis } from 'recharts';
import { artifactUrl } from '../api/client';
import { formatNumber } from '../lib/jobs';
import { defaultAxes, memberMetrics, metricKeys, points, type Member } from '../lib/pareto';

/** One front to compare: the job's id and its Pareto members. */
export interface Front { jobId: string; members: Member[] }

/** Okabe–Ito colours (apart for protan, deutan and tritan vision): blue and vermillion on the
 * light body (#fff), sky blue and orange on the dark one (#242424), each at least 3:1 against its
 * background; the marker shapes differ as well, so colour is never the only cue. */
export const SERIES = [
  { light: '#0072B2', dark: '#56B4E9', shape: 'circle', symbol: '●', name: 'circles' },
  { light: '#D55E00', dark: '#E69F00', shape: 'triangle', symbol: '▲', name: 'triangles' },
] as const;

export function ParetoCompare({ fronts, chartWidth }: {
  fronts: [Front, Front];
  /** Fixed chart width in px (component tests, where nothing has a size); default: the container's. */
  chartWidth?: number;
}) {
  const scheme = useComputedColorScheme('light');
  const color = (i: number) => SERIES[i][scheme];
  const rows = useMemo(() => fronts.map((f) => f.members.map((m) => ({ m, x: memberMetrics(m) }))), [fronts]);
  const keys = useMemo(() => metricKeys(rows.flat().map((r) => r.x)), [rows]);
  const [xKey, setX] = useState<string | null>(null);
  const [yKey, setY] = useState<string | null>(null);
  const [xDefault, yDefault] = defaultAxes(keys);
  const xk = xKey ?? xDefault;
  const yk = yKey ?? yDefault;
  const data = rows.map((r) => points(r, xk, yk));
  const label = (i: number) => `${SERIES[i].symbol} ${fronts[i].jobId.slice(0, 8)}`;
  const plotted = data.some((d) => d.length > 0);
  const chart = (
    <ScatterChart margin={{ top: 10, right: 20, bottom: 20, left: 10 }} {...(chartWidth ? { width: chartWidth, height: 320 } : {})}>
      <CartesianGrid strokeDasharray="3 3" stroke="var(--mantine-color-default-border)" />
      <XAxis type="number" dataKey="x" name={xk} label={{ value: xk, position: 'insideBottom', offset: -10, fill: 'var(--mantine-color-dimmed)' }} domain={['auto', 'auto']} tick={{ fill: 'var(--mantine-color-dimmed)' }} />
      <YAxis type="number" dataKey="y" name={yk} domain={['auto', 'auto']} tick={{ fill: 'var(--mantine-color-dimmed)' }} />
      <Tooltip cursor={{ strokeDasharray: '3 3' }} contentStyle={{ background: 'var(--mantine-color-body)', borderColor: 'var(--mantine-color-default-border)' }} />
      {/* legend text in the body colour (series colours are for markers, not for reading) */}
      <Legend verticalAlign="top" height={28} formatter={(v) => <span style={{ color: 'var(--mantine-color-text)' }}>{v}</span>} />
      {data.map((d, i) => (
        <Scatter key={fronts[i].jobId} name={`${fronts[i].jobId.slice(0, 8)} (${SERIES[i].name}, ${d.length})`} data={d}
          fill={color(i)} shape={SERIES[i].shape} legendType={SERIES[i].shape} isAnimationActive={false} />
      ))}
    </ScatterChart>
  );
  return (
    <div data-testid="pareto-compare">
      <Group justify="space-between" mb="xs">
        <Title order={5}>Pareto fronts</Title>
        <Group gap="xs">
          <Select size="xs" label="x" data={keys} value={xk} onChange={setX} w={200} allowDeselect={false} />
          <Select size="xs" label="y" data={keys} value={yk} onChange={setY} w={200} allowDeselect={false} />
        </Group>
      </Group>
      {plotted ? (
        <div style={{ height: 320 }} data-testid="pareto-compare-chart" data-series={data.filter((d) => d.length).length}
          data-points={data.map((d) => d.length).join(',')} role="img"
          aria-label={`Pareto fronts of ${fronts.map((f) => f.jobId.slice(0, 8)).join(' and ')}: ${yk} against ${xk}`}>
          {chartWidth ? chart : <ResponsiveContainer>{chart}</ResponsiveContainer>}
        </div>
      ) : <Text size="sm" c="dimmed">Neither front has members with both {xk || 'x'} and {yk || 'y'} to plot; pick other metrics.</Text>}
      <SimpleGrid cols={2} mt="sm">
        {fronts.map((f, i) => (
          <div key={f.jobId}>
            <Text size="sm" fw={500} mb={4}>
              <span style={{ color: color(i) }} aria-hidden>{SERIES[i].symbol}</span>{' '}
              <Link to={`/jobs/${f.jobId}`}>{f.jobId.slice(0, 8)}</Link> · {f.members.length} member{f.members.length === 1 ? '' : 's'}
            </Text>
            {f.members.length === 0 ? <Text size="sm" c="dimmed">This optimization found no Pareto member.</Text> : (
              <Table fz="xs" striped data-testid={`pareto-members-${i}`} aria-label={`Pareto members of ${label(i)}`}>
                <Table.Thead><Table.Tr><Table.Th>Member</Table.Th><Table.Th ta="right">{xk}</Table.Th><Table.Th ta="right">{yk}</Table.Th></Table.Tr></Table.Thead>
                <Table.Tbody>
                  {rows[i].map(({ m, x }) => (
                    <Table.Tr key={m.hash}>
                      <Table.Td><Anchor size="xs" href={artifactUrl(f.jobId, m.config_path)} target="_blank">{m.hash.slice(0, 12)}</Anchor></Table.Td>
                      <Table.Td ta="right" ff="monospace">{formatNumber(x[xk])}</Table.Td>
                      <Table.Td ta="right" ff="monospace">{formatNumber(x[yk])}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            )}
          </div>
        ))}
      </SimpleGrid>
    </div>
  );
}
