import { useEffect, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { Grid, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useHost, useInstances } from '../api/queries';
import { HostCard, hostUsage } from '../components/HostCard';
import { HostRescue } from '../components/HostRescue';
import { AddHost } from '../components/AddHost';
import { StateBadge } from '../components/StateBadge';
import { ProblemAlert } from '../components/ProblemAlert';
import { formatDuration } from '../lib/states';

interface Sample { t: string; cpu: number | null; mem: number | null; disk: number | null }

export default function HostPage() {
  const { id = '' } = useParams();
  const host = useHost(id);
  const instances = useInstances();
  const [samples, setSamples] = useState<Sample[]>([]);
  useEffect(() => {
    if (!host.data) return;
    const { cpu, mem, disk } = hostUsage(host.data);
    const t = new Date().toLocaleTimeString();
    setSamples((s) => [...s.slice(-119), { t, cpu, mem, disk }]);
  }, [host.dataUpdatedAt]); // eslint-disable-line react-hooks/exhaustive-deps
  if (host.error) return <ProblemAlert error={host.error} />;
  const h = host.data;
  if (!h) return <Text>Loading…</Text>;
  const mine = (instances.data ?? []).filter((i) => i.host_id === h.id);
  return (
    <Stack>
      <Title order={2}>Host {h.name}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, md: 4 }}><HostCard host={h} /></Grid.Col>
        <Grid.Col span={{ base: 12, md: 8 }}>
          <Paper withBorder p="md" h="100%">
            <Text size="sm" fw={600}>Usage since this page opened (%, every 5 s)</Text>
            <div style={{ height: 220 }} data-testid="host-chart">
              <ResponsiveContainer>
                <LineChart data={samples}>
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="t" minTickGap={40} />
                  <YAxis domain={[0, 100]} />
                  <Tooltip />
                  <Legend />
                  <Line type="monotone" dataKey="cpu" name="CPU" stroke="var(--mantine-color-indigo-6)" dot={false} isAnimationActive={false} />
                  <Line type="monotone" dataKey="mem" name="Memory" stroke="var(--mantine-color-teal-6)" dot={false} isAnimationActive={false} />
                  <Line type="monotone" dataKey="disk" name="Disk" stroke="var(--mantine-color-orange-6)" dot={false} isAnimationActive={false} />
                </LineChart>
              </ResponsiveContainer>
            </div>
          </Paper>
        </Grid.Col>
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
