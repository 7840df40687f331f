import { SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useHosts } from '../api/queries';
import { HostCard } from '../components/HostCard';
import { ProblemAlert } from '../components/ProblemAlert';
import { Empty } from '../components/Empty';

/** Hosts. Adding a VPS (address and key → scan → fingerprint → test → provision) plugs in here
 * once the api has `POST /api/v1/hosts` and its scan/accept/test/provision actions. */
export default function Hosts() {
  const hosts = useHosts();
  return (
    <Stack>
      <Title order={2}>Hosts</Title>
      <Text size="sm" c="dimmed">Every host runs a botfleet agent that supervises its bots. <code>local</code> is this machine.</Text>
      <ProblemAlert error={hosts.error} />
      {hosts.data && hosts.data.length === 0 ? <Empty title="No hosts">Run <code>botfleet up</code>: it creates the host <code>local</code>.</Empty> : (
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }}>{(hosts.data ?? []).map((h) => <HostCard key={h.id} host={h} />)}</SimpleGrid>
      )}
    </Stack>
  );
}
