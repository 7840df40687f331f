import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { Button, Checkbox, Group, Modal, Paper, Select, SimpleGrid, Stack, Tabs, Text, Timeline, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { hostNames, useHosts, useInstance } from '../api/queries';
import type { FleetEvent } from '../api/types';
import { STATE_COLOR, formatDuration, formatTime } from '../lib/states';
import { StateBadge } from '../components/StateBadge';
import { ProblemAlert } from '../components/ProblemAlert';
import { LogViewer } from '../components/LogViewer';
import { ConfigEditor } from '../components/ConfigEditor';

function Stat({ label, value, testId }: { label: string; value: React.ReactNode; testId?: string }) {
  return <Paper withBorder p="xs"><Text size="xs" c="dimmed">{label}</Text><Text fw={600} data-testid={testId}>{value}</Text></Paper>;
}

function eventText(ev: FleetEvent): string {
  const d = ev.data as Record<string, unknown>;
  if (ev.kind === 'instance.state') {
    const parts = [`${d.old ?? '?'} → ${d.new}`];
    if (d.exit_code != null) parts.push(`exit code ${d.exit_code}`);
    if (d.exit_signal) parts.push(`signal ${d.exit_signal}`);
    if (d.pid) parts.push(`pid ${d.pid}`);
    if (d.restart_count) parts.push(`restart #${d.restart_count}`);
    if (d.reason) parts.push(String(d.reason));
    return parts.join(' · ');
  }
  if (ev.kind === 'instance.command') return `command: ${d.action ?? d.desired ?? JSON.stringify(d)}`;
  if (ev.kind === 'instance.config') return `config saved as v${d.version}`;
  return JSON.stringify(d);
}

function StateTimeline({ id }: { id: string }) {
  const events = useQuery({ queryKey: ['instance-events', id], queryFn: () => call(api.GET('/api/v1/instances/{instance_id}/events', { params: { path: { instance_id: id }, query: { limit: 200 } } })) as Promise<FleetEvent[]> });
  if (events.error) return <ProblemAlert error={events.error} />;
  if (!events.data?.length) return <Text c="dimmed" size="sm">No events yet: start the instance and its state changes appear here.</Text>;
  return (
    <Timeline bulletSize={14} lineWidth={2} data-testid="timeline">
      {events.data.map((ev) => {
        const state = ev.kind === 'instance.state' ? String((ev.data as Record<string, unknown>).new) : '';
        return (
          <Timeline.Item key={ev.id} color={STATE_COLOR[state] ?? 'gray'} title={<Text size="sm" fw={600}>{state || ev.kind}</Text>}>
            <Text size="xs">{eventText(ev)}</Text>
            <Text size="xs" c="dimmed">{formatTime(ev.time)}</Text>
          </Timeline.Item>
        );
      })}
    </Timeline>
  );
}

export default function InstancePage() {
  const { id = '' } = useParams();
  const instance = useInstance(id);
  const hosts = useHosts();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [moving, setMoving] = useState(false);
  const [target, setTarget] = useState<string | null>(null);
  const [force, setForce] = useState(false);
  const [moveError, setMoveError] = useState<unknown>(null);
  const i = instance.data;
  const act = async (action: 'start' | 'stop' | 'restart') => {
    setBusy(action);
    setError(null);
    try {
      const out = await call(api.POST(`/api/v1/instances/{instance_id}/${action}`, { params: { path: { instance_id: id } } }));
      qc.setQueryData(['instance', id], out);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      await call(api.DELETE('/api/v1/instances/{instance_id}', { params: { path: { instance_id: id } } }));
      qc.invalidateQueries({ queryKey: ['instances'] });
      navigate('/instances');
    } catch (e) {
      setError(e);
      setConfirmDelete(false);
    }
  };
  const move = async () => {
    setMoveError(null);
    setBusy('move');
    try {
      const out = await call(api.POST('/api/v1/instances/{instance_id}/move', { params: { path: { instance_id: id } }, body: { host: target!, force } }));
      qc.setQueryData(['instance', id], out);
      qc.invalidateQueries({ queryKey: ['instances'] });
      setMoving(false);
    } catch (e) {
      setMoveError(e);
    } finally {
      setBusy(null);
    }
  };
  if (instance.error) return <ProblemAlert error={instance.error} />;
  if (!i) return <Text>Loading…</Text>;
  const hostName = hostNames(hosts.data)[i.host_id] ?? i.host_id;
  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={2}>{i.name}</Title>
          <StateBadge state={i.state} />
          <Text size="sm" c="dimmed">wants {i.desired_state}</Text>
        </Group>
        <Group gap="xs">
          <Button onClick={() => act('start')} loading={busy === 'start'} data-testid="start">Start</Button>
          <Button variant="default" onClick={() => act('restart')} loading={busy === 'restart'} data-testid="restart">Restart</Button>
          <Button color="red" variant="light" onClick={() => act('stop')} loading={busy === 'stop'} data-testid="stop">Stop</Button>
          <Button component={Link} to={`/jobs?instance=${i.id}`} variant="default">Backtest / optimize</Button>
          <Button variant="default" onClick={() => { setMoving(true); setTarget(null); setForce(false); setMoveError(null); }} data-testid="move">Move…</Button>
          <Button color="red" variant="subtle" onClick={() => setConfirmDelete(true)}>Delete</Button>
        </Group>
      </Group>
      <ProblemAlert error={error} onClose={() => setError(null)} />
      <SimpleGrid cols={{ base: 2, sm: 4, lg: 8 }}>
        <Stat label="Host" value={<Link to={`/hosts/${i.host_id}`}>{hostName}</Link>} />
        <Stat label="Profile" value={`${i.profile}${i.simulated ? ' (simulated)' : ''}`} />
        <Stat label="Uptime" value={formatDuration(i.uptime)} testId="uptime" />
        <Stat label="Restarts" value={i.restart_count} testId="restarts" />
        <Stat label="PID" value={i.pid ?? '—'} />
        <Stat label="Last exit" value={i.exit_signal ? `signal ${i.exit_signal}` : i.exit_code != null ? `code ${i.exit_code}` : '—'} />
        <Stat label="Config" value={`v${i.config_version}`} />
        <Stat label="Generation" value={i.generation} />
      </SimpleGrid>
      {i.state_reason && <Text size="sm" c="dimmed">Last change: {i.state_reason} ({formatTime(i.state_changed_at)})</Text>}
      <Tabs defaultValue="logs" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="logs">Logs</Tabs.Tab>
          <Tabs.Tab value="timeline">State timeline</Tabs.Tab>
          <Tabs.Tab value="config">Config</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="logs" pt="sm"><LogViewer url={`/api/v1/instances/${encodeURIComponent(id)}/logs?tail=2000&batch=true`} instanceId={id} fileName={`${i.name}.log`} /></Tabs.Panel>
        <Tabs.Panel value="timeline" pt="sm"><StateTimeline id={id} /></Tabs.Panel>
        <Tabs.Panel value="config" pt="sm"><ConfigEditor instance={i} /></Tabs.Panel>
      </Tabs>
      <Modal opened={moving} onClose={() => setMoving(false)} title={`Move ${i.name} to another host`} centered>
        <Stack>
          <Text size="sm">botfleet stops it on {hostName} and waits for the confirmed stop before it starts on the new host (a bot never runs twice). If it was running it starts again there.</Text>
          <Select label="New host" data={(hosts.data ?? []).filter((h) => h.id !== i.host_id).map((h) => ({ value: h.name, label: `${h.name} (${h.status})` }))} value={target} onChange={setTarget} data-testid="move-target" />
          <Checkbox label={`${hostName} is lost (offline for good): move without its confirmed stop`} checked={force} onChange={(e) => setForce(e.currentTarget.checked)} color="red" />
          <ProblemAlert error={moveError} />
          <Group justify="end"><Button variant="default" onClick={() => setMoving(false)}>Cancel</Button><Button onClick={move} disabled={!target} loading={busy === 'move'}>Move</Button></Group>
        </Stack>
      </Modal>
      <Modal opened={confirmDelete} onClose={() => setConfirmDelete(false)} title={`Delete ${i.name}?`} centered>
        <Text size="sm" mb="md">Its config history and events go too. A running instance must be stopped first.</Text>
        <Group justify="end"><Button variant="default" onClick={() => setConfirmDelete(false)}>Keep it</Button><Button color="red" onClick={remove}>Delete</Button></Group>
      </Modal>
    </Stack>
  );
}
