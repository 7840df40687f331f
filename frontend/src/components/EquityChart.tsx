/** A backtest's balance and equity over time, read from its `balance_and_equity.csv.gz`
 * artifact (passivbot's results layout; the api stores only the summary). */
import { Paper, Text, Title } from '@mantine/core';
import { LineChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { useQuery } from '@tanstack/react-query';
import { artifactUrl } from '../api/client';
import { artifactText, formatNumber, parseSeries } from '../lib/jobs';
import { ProblemAlert } from './ProblemAlert';

const COLORS = ['indigo.6', 'teal.6', 'orange.6', 'grape.6', 'gray.6'];

/** `name`: the artifact (relative to the job dir); `title` shown above; `height` in px. */
export function EquityChart({ jobId, name, title = 'Balance and equity', height = 260 }: { jobId: string; name: string; title?: string; height?: number }) {
  const series = useQuery({
    queryKey: ['equity', jobId, name],
    queryFn: async () => parseSeries(await artifactText(artifactUrl(jobId, name)), 1000),
    staleTime: Infinity,
  });
  const s = series.data;
  return (
    <Paper withBorder p="md" data-testid="equity-chart" data-points={s?.rows.length ?? 0}>
      <Title order={4} mb="xs">{title}</Title>
      <ProblemAlert error={series.error} />
      {!s ? <Text size="sm" c="dimmed">{series.error ? '' : 'Reading the series…'}</Text> : s.rows.length === 0 ? (
        <Text size="sm" c="dimmed">The backtest wrote an empty balance/equity series.</Text>
      ) : (
        <>
          <LineChart h={height} data={s.rows} dataKey={s.x} curveType="linear" withDots={false} withLegend tooltipAnimationDuration={0}
            series={s.columns.map((c, i) => ({ name: c, color: COLORS[i % COLORS.length] }))}
            lineProps={{ isAnimationActive: false }} valueFormatter={(v) => formatNumber(v)}
            xAxisProps={{ type: 'number', domain: ['dataMin', 'dataMax'], minTickGap: 40 }} yAxisProps={{ domain: ['auto', 'auto'] }}
            xAxisLabel={s.x} />
          <Text size="xs" c="dimmed" mt="xs">{s.total > s.rows.length ? `${s.rows.length} of ${s.total} rows shown, evenly spaced` : `${s.total} rows`} · {name}</Text>
        </>
      )}
    </Paper>
  );
}
