/** The host page's charts (CPU, memory, disk, load) over the host's metrics history
 * (`GET /api/v1/hosts/{id}/metrics`), updated live: a full read when the window changes,
 * then a poll every 5 s for the samples after the newest one held. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { Group, Paper, SegmentedControl, SimpleGrid, Text, Title } from '@mantine/core';
import { LineChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { api, call } from '../api/client';
import { ProblemAlert } from './ProblemAlert';
import { WINDOWS, mergePoints, nextSince, toRows, type MetricsPoint, type MetricsRow } from '../lib/hostMetrics';

const POLL_MS = 5_000;

/** Axis labels with seconds when the chart spans less than 10 minutes. */
function timeTick(span: number) {
  const opts: Intl.DateTimeFormatOptions = span < 600_000 ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { hour: '2-digit', minute: '2-digit' };
  return (t: number) => new Date(t).toLocaleTimeString([], opts);
}
const round = (v: number) => String(Math.round(v * 100) / 100);

function Chart({ title, rows, series, unit, max, testId }: {
  title: string; rows: MetricsRow[]; series: { name: keyof MetricsRow; label: string; color: string }[];
  unit?: string; max?: number; testId: string;
}) {
  const last = rows.length ? rows[rows.length - 1] : null;
  const span = rows.length ? rows[rows.length - 1].t - rows[0].t : 0;
  return (
    <Paper withBorder p="sm" data-testid={testId} data-points={rows.length}>
      <Group justify="space-between" mb={4}>
        <Text size="sm" fw={600}>{title}</Text>
        <Text size="xs" c="dimmed">{last ? series.map((s) => `${s.label} ${round(last[s.name])}${unit ?? ''}`).join(' · ') : 'no samples yet'}</Text>
      </Group>
      <LineChart h={160} data={rows} dataKey="t" series={series} curveType="linear" withDots={false} unit={unit}
        withLegend={series.length > 1} legendProps={{ verticalAlign: 'bottom', height: 24 }} tooltipAnimationDuration={0}
        lineProps={{ isAnimationActive: false }}
        xAxisProps={{ type: 'number', scale: 'time', domain: ['dataMin', 'dataMax'], tickFormatter: timeTick(span), minTickGap: 40 }}
        yAxisProps={max ? { domain: [0, max], ticks: [0, 25, 50, 75, 100] } : undefined} valueFormatter={(v) => round(v)}
        tooltipProps={{ labelFormatter: (t) => new Date(Number(t)).toLocaleString() }} />
    </Paper>
  );
}

/** Four charts of one host's samples over a chosen window (15 min to 24 h). */
export function HostMetricsCharts({ hostId }: { hostId: string }) {
  const [windowLabel, setWindowLabel] = useState('1 h');
  const windowMs = WINDOWS[windowLabel];
  const [points, setPoints] = useState<readonly MetricsPoint[]>([]);
  const [error, setError] = useState<unknown>(null);
  const held = useRef<readonly MetricsPoint[]>([]);

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    held.current = [];
    setPoints([]);
    const poll = async () => {
      try {
        const fresh = await call(api.GET('/api/v1/hosts/{host_id}/metrics', {
          params: { path: { host_id: hostId }, query: { since: nextSince(held.current, windowMs), max_points: 720 } },
        }));
        if (stop) return;
        const merged = mergePoints(held.current, fresh, windowMs);
        if (merged !== held.current) setPoints((held.current = merged));
        setError(null);
      } catch (e) {
        if (!stop) setError(e);
      }
      if (!stop) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => { stop = true; clearTimeout(timer); };
  }, [hostId, windowMs]);

  const rows = useMemo(() => toRows(points), [points]);
  return (
    <Paper withBorder p="md" data-testid="host-chart">
      <Group justify="space-between" mb="xs">
        <Title order={4}>Metrics</Title>
        <SegmentedControl size="xs" data={Object.keys(WINDOWS)} value={windowLabel} onChange={setWindowLabel} aria-label="Time window" />
      </Group>
      <ProblemAlert error={error} />
      {rows.length === 0 && !error ? (
        <Text size="sm" c="dimmed">No samples in this window: the host's agent sends one every few seconds once it is connected.</Text>
      ) : (
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <Chart title="CPU" rows={rows} unit="%" max={100} testId="chart-cpu" series={[{ name: 'cpu', label: 'CPU', color: 'indigo.6' }]} />
          <Chart title="Memory" rows={rows} unit="%" max={100} testId="chart-memory" series={[{ name: 'memory', label: 'used', color: 'teal.6' }]} />
          <Chart title="Disk" rows={rows} unit="%" max={100} testId="chart-disk" series={[{ name: 'disk', label: 'used', color: 'orange.6' }]} />
          <Chart title="Load average" rows={rows} testId="chart-load" series={[
            { name: 'load1', label: '1 min', color: 'grape.6' }, { name: 'load5', label: '5 min', color: 'blue.6' }, { name: 'load15', label: '15 min', color: 'gray.6' }]} />
        </SimpleGrid>
      )}
    </Paper>
  );
}
