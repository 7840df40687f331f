import { Badge, Group, Paper, Progress, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { Link } from 'react-router-dom';
import { useHosts, useInstances, useJobs } from '../api/queries';
import { useFeed } from '../lib/live';
import { ACTIVE_JOB, STATES, STATE_COLOR, formatDuration } from '../lib/states';
import { HostCard } from '../components/HostCard';
import { Empty } from '../components/Empty';
import { ProblemAlert } from '../components/ProblemAlert';
import { JobStatusBadge } from '../components/StateBadge';
import type { FleetEvent } from '../api/types';

function describe(ev: FleetEvent): string {
  const d = ev.data as Record<string, unknown>;
  if (ev.kind === 'instance.state') {
    const exit = d.exit_code != null ? ` exit ${d.exit_code}` : d.exit_signal ? ` ${d.exit_signal}` : '';
    return `${d.old ?? '?'} → ${d.new}${exit}${d.reason ? ` (${d.reason})` : ''}`;
  }
  if (ev.kind === 'job.progress') return `${Math.round(100 * Number(d.fraction ?? d.progress ?? 0))}% ${d.phase ?? ''}`;
  if (ev.kind === 'job.status') return `${d.old ?? ''} → ${d.new ?? d.status ?? ''} ${d.reason ?? ''}`;
  if (ev.kind === 'host.status') return `${d.old ?? '?'} → ${d.new}`;
  return Object.entries(d).slice(0, 3).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

export default function Overview() {
  const hosts = useHosts();
  const instances = useInstances();
  const jobs = useJobs();
  const feed = useFeed();
  const names = Object.fromEntries((instances.data ?? []).map((i) => [i.id, i.name]));
  const counts: Record<string, number> = {};
  for (const i of instances.data ?? []) counts[i.state] = (counts[i.state] ?? 0) + 1;
  const running = (jobs.data ?? []).filter((j) => ACTIVE_JOB.has(j.status));
  return (
    <Stack>
      <Title order={2}>Fleet overview</Title>
      <ProblemAlert error={hosts.error || instances.error || jobs.error} />
      <Paper withBorder p="md">
        <Group justify="space-between" mb="xs">
          <Title order={4}>Instances</Title>
          <Text size="sm" component={Link} to="/instances">{instances.data?.length ?? 0} in total →</Text>
        </Group>
        {instances.data && instances.data.length === 0 ? (
          <Empty title="No instances yet">Create one under <Link to="/instances/new">Instances → New instance</Link> (start from a passivbot example config), or run <code>botfleet demo</code>.</Empty>
        ) : (
          <Group gap="xs" data-testid="state-counts">
            {STATES.map((s) => (
              <Badge key={s} size="lg" variant={counts[s] ? 'filled' : 'outline'} color={STATE_COLOR[s]} component={Link} to={`/instances?state=${s}`} style={{ cursor: 'pointer' }}>
                {s} {counts[s] ?? 0}
              </Badge>
            ))}
          </Group>
        )}
      </Paper>
      <Title order={4}>Hosts</Title>
      <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>
        {(hosts.data ?? []).map((h) => <HostCard key={h.id} host={h} />)}
      </SimpleGrid>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Paper withBorder p="md">
          <Title order={4} mb="xs">Running jobs</Title>
          {running.length === 0 ? <Text c="dimmed" size="sm">No job is queued or running. Start a backtest or optimize under <Link to="/jobs">Jobs</Link>.</Text> : (
            <Stack gap="xs">
              {running.map((j) => (
                <div key={j.id}>
                  <Group justify="space-between"><Text size="sm" component={Link} to={`/jobs/${j.id}`}>{j.kind} {j.id.slice(0, 8)}</Text><JobStatusBadge status={j.status} /></Group>
                  <Progress value={100 * j.progress} size="sm" aria-label={`progress of ${j.id}`} />
                </div>
              ))}
            </Stack>
          )}
        </Paper>
        <Paper withBorder p="md">
          <Title order={4} mb="xs">Live events</Title>
          {feed.length === 0 ? <Text c="dimmed" size="sm">Waiting for events: start an instance or a job and its changes appear here.</Text> : (
            <ScrollArea h={280}>
              <Table fz="xs" data-testid="feed">
                <Table.Tbody>
                  {feed.slice(0, 100).map((ev) => (
                    <Table.Tr key={ev.id}>
                      <Table.Td>{new Date(ev.time).toLocaleTimeString()}</Table.Td>
                      <Table.Td>{ev.kind}</Table.Td>
                      <Table.Td>{ev.instance_id ? <Link to={`/instances/${ev.instance_id}`}>{names[ev.instance_id] ?? ev.instance_id.slice(0, 8)}</Link> : ev.job_id ? <Link to={`/jobs/${ev.job_id}`}>{ev.job_id.slice(0, 8)}</Link> : ''}</Table.Td>
                      <Table.Td>{describe(ev)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea>
          )}
        </Paper>
      </SimpleGrid>
      <Text size="xs" c="dimmed">Uptime of the longest-running bot: {formatDuration(Math.max(0, ...(instances.data ?? []).map((i) => i.uptime ?? 0)))}</Text>
    </Stack>
  );
}
