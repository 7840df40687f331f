import { useState } from 'react';
import { Button, Group, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useHosts } from '../api/queries';
import { HostCard } from '../components/HostCard';
import { AddHost } from '../components/AddHost';
import { ProblemAlert } from '../components/ProblemAlert';
import { Empty } from '../components/Empty';

export default function Hosts() {
  const hosts = useHosts();
  const [adding, setAdding] = useState(false);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Hosts</Title>
        {!adding && <Button onClick={() => setAdding(true)} data-testid="add-host-open">Add host</Button>}
      </Group>
      <Text size="sm" c="dimmed">Every host runs a botfleet agent that supervises its bots. <code>local</code> is this machine; add a VPS over SSH.</Text>
      {adding && <AddHost onDone={() => setAdding(false)} />}
      <ProblemAlert error={hosts.error} />
      {hosts.data && hosts.data.length === 0 ? <Empty title="No hosts">Run <code>botfleet up</code>: it creates the host <code>local</code>. Then add VPSes here.</Empty> : (
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>{(hosts.data ?? []).map((h) => <HostCard key={h.id} host={h} />)}</SimpleGrid>
      )}
    </Stack>
  );
}
