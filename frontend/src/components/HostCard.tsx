import { Badge, Group, Paper, Progress, Stack, Text } from '@mantine/core';
import { Link } from 'react-router-dom';
import type { Host } from '../api/types';
import { formatBytes } from '../lib/states';

interface Metrics { cpu_percent?: number; memory_total?: number; memory_used?: number; disk_total?: number; disk_free?: number; load?: number[] }

export function hostUsage(host: Host) {
  const m = (host.metrics ?? {}) as Metrics;
  const mem = m.memory_total ? (100 * (m.memory_used ?? 0)) / m.memory_total : null;
  const disk = m.disk_total ? (100 * (m.disk_total - (m.disk_free ?? 0))) / m.disk_total : null;
  return { cpu: m.cpu_percent ?? null, mem, disk, m };
}

function Bar({ label, value, hint }: { label: string; value: number | null; hint?: string }) {
  return (
    <div>
      <Group justify="space-between"><Text size="xs">{label}</Text><Text size="xs" c="dimmed">{value == null ? '—' : `${value.toFixed(0)}%`}{hint ? ` · ${hint}` : ''}</Text></Group>
      <Progress value={value ?? 0} color={value != null && value > 90 ? 'red' : value != null && value > 75 ? 'orange' : 'indigo'} size="sm" aria-label={label} />
    </div>
  );
}

/** A host's health at a glance: status, agent version, CPU/memory/disk, instance counts. */
export function HostCard({ host }: { host: Host }) {
  const { cpu, mem, disk, m } = hostUsage(host);
  const total = Object.values(host.instances).reduce((a, b) => a + b, 0);
  return (
    <Paper withBorder p="md" data-testid={`host-${host.name}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Text fw={600} component={Link} to={`/hosts/${host.id}`}>{host.name}</Text>
          <Badge color={host.status === 'online' ? 'green' : host.status === 'offline' ? 'red' : 'gray'}>{host.status}</Badge>
        </Group>
        <Text size="xs" c="dimmed">{host.address ?? 'this machine'} · agent {host.agent_version ?? 'not connected yet'}</Text>
        <Bar label="CPU" value={cpu} />
        <Bar label="Memory" value={mem} hint={m.memory_total ? formatBytes(m.memory_total) : undefined} />
        <Bar label="Disk" value={disk} hint={m.disk_free != null ? `${formatBytes(m.disk_free)} free` : undefined} />
        {m.load && <Text size="xs" data-testid="host-load">Load {m.load.map((x) => x.toFixed(2)).join(' · ')} (1 · 5 · 15 min)</Text>}
        <Text size="xs">{total} instances{total ? ': ' + Object.entries(host.instances).map(([s, n]) => `${n} ${s}`).join(', ') : ''}</Text>
      </Stack>
    </Paper>
  );
}
