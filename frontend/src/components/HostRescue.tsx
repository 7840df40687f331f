/** Rescue actions on a remote host, each behind a confirmation: restart its agent, stop every
 * bot on it, upgrade or uninstall the agent, read the agent's log, delete the host. */
import { useState } from 'react';
import { Button, Code, Group, Modal, Paper, ScrollArea, Stack, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router-dom';
import { api, call } from '../api/client';
import type { Host } from '../api/types';
import { ProblemAlert } from './ProblemAlert';

type Action = 'restart' | 'stop-all' | 'upgrade' | 'uninstall' | 'delete';
const ACTIONS: Record<Action, { label: string; warn: string; color?: string }> = {
  restart: { label: 'Restart agent', warn: 'The agent restarts and re-adopts its bots; the bots keep running.' },
  'stop-all': { label: 'Stop all bots', warn: 'Every bot on this host is stopped by its signal ladder (SIGINT, then SIGTERM, then SIGKILL).', color: 'red' },
  upgrade: { label: 'Upgrade agent', warn: 'Installs this botfleet version of the agent and restarts it; bots keep running.' },
  uninstall: { label: 'Uninstall agent', warn: 'Removes the agent and its service from the host. Stop its bots first.', color: 'red' },
  delete: { label: 'Delete host', warn: 'Forgets the host and its pinned key. It must have no instances.', color: 'red' },
};

export function HostRescue({ host }: { host: Host }) {
  const [confirm, setConfirm] = useState<Action | null>(null);
  const [result, setResult] = useState<unknown>(null);
  const [log, setLog] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const path = { params: { path: { host_id: host.id } } };
  const run = async (action: Action) => {
    setConfirm(null);
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      if (action === 'restart') setResult(await call(api.POST('/api/v1/hosts/{host_id}/agent/restart', path)));
      if (action === 'stop-all') setResult(await call(api.POST('/api/v1/hosts/{host_id}/stop-all', path)));
      if (action === 'upgrade') setResult(await call(api.POST('/api/v1/hosts/{host_id}/upgrade', { ...path, body: { wait: 60, force: false } })));
      if (action === 'uninstall') setResult(await call(api.POST('/api/v1/hosts/{host_id}/uninstall', { ...path, body: { force: false } })));
      if (action === 'delete') {
        await call(api.DELETE('/api/v1/hosts/{host_id}', path));
        qc.invalidateQueries({ queryKey: ['hosts'] });
        navigate('/hosts');
      }
      qc.invalidateQueries({ queryKey: ['host', host.id] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const readLog = async () => {
    setError(null);
    try { setLog((await call(api.GET('/api/v1/hosts/{host_id}/agent/log', path))).log); } catch (e) { setError(e); }
  };
  return (
    <Paper withBorder p="md">
      <Title order={4} mb="xs">Rescue</Title>
      <Group gap="xs">
        {(Object.keys(ACTIONS) as Action[]).map((a) => (
          <Button key={a} size="xs" variant="light" color={ACTIONS[a].color} onClick={() => setConfirm(a)} loading={busy && confirm === a}>{ACTIONS[a].label}</Button>
        ))}
        <Button size="xs" variant="default" onClick={readLog}>Agent log</Button>
      </Group>
      <ProblemAlert error={error} />
      {result != null && <Code block mt="xs">{JSON.stringify(result, null, 2)}</Code>}
      {log != null && <ScrollArea h={240} mt="xs"><Code block>{log || '(empty)'}</Code></ScrollArea>}
      <Modal opened={!!confirm} onClose={() => setConfirm(null)} title={confirm ? `${ACTIONS[confirm].label} on ${host.name}?` : ''} centered>
        <Stack>
          <Text size="sm">{confirm && ACTIONS[confirm].warn}</Text>
          <Group justify="end">
            <Button variant="default" onClick={() => setConfirm(null)}>Cancel</Button>
            <Button color={confirm ? ACTIONS[confirm].color : undefined} onClick={() => confirm && run(confirm)} data-testid="confirm">{confirm && ACTIONS[confirm].label}</Button>
          </Group>
        </Stack>
      </Modal>
    </Paper>
  );
}
