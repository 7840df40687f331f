import { Link, useParams } from 'react-router-dom';
import { Grid, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useHost, useInstances } from '../api/queries';
import { HostCard } from '../components/HostCard';
import { HostMetricsCharts } from '../components/HostMetricsCharts';
import { HostRescue } from '../components/HostRescue';
import { AddHost } from '../components/AddHost';
import { StateBadge } from '../components/StateBadge';
import { ProblemAlert } from '../components/ProblemAlert';
import { formatDuration } from '../lib/states';

export default function HostPage() {
  const { id = '' } = useParams();
  const host = useHost(id);
  const instances = useInstances();
  if (host.error) return <ProblemAlert error={host.error} />;
  const h = host.data;
  if (!h) return <Text>Loading…</Text>;
  const mine = (instances.data ?? []).filter((i) => i.host_id === h.id);
  return (
    <Stack>
      <Title order={2}>Host {h.name}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, md: 4 }}><HostCard host={h} /></Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}><HostMetricsCharts hostId={h.id} /></Grid.Col>
      </Grid>
      {h.address && !h.provisioned_at && (
        <><Title order={4}>Finish setting up {h.name}</Title><AddHost resume={h} /></>
      )}
      {h.address && <HostRescue host={h} />}
      <Paper withBorder p="md">
        <Title order={4} mb="xs">Instances on {h.name} ({mine.length})</Title>
        {mine.length === 0 ? <Text size="sm" c="dimmed">No instance runs here. Create one and pick this host.</Text> : (
          <Table fz="sm"><Table.Tbody>
            {mine.map((i) => <Table.Tr key={i.id}><Table.Td><Link to={`/instances/${i.id}`}>{i.name}</Link></Table.Td><Table.Td><StateBadge state={i.state} /></Table.Td><Table.Td>{i.profile}</Table.Td><Table.Td>{formatDuration(i.uptime)}</Table.Td></Table.Tr>)}
          </Table.Tbody></Table>
        )}
      </Paper>
    </Stack>
  );
}
