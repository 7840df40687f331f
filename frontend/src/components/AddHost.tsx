/** Add a VPS: address and key → scan → confirm the host key's fingerprint → test → provision
 * the agent (progress from the `host.provision` events on the live feed). Each step is one
 * api call; errors show at the step that failed, and the wizard can resume from any step. */
import { useState, type FormEvent } from 'react';
import { Alert, Button, Code, FileInput, Group, NumberInput, Paper, SegmentedControl, Stack, Stepper, Table, Text, TextInput, Textarea } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router-dom';
import { api, call } from '../api/client';
import type { Host } from '../api/types';
import { useFeed } from '../lib/live';
import { problemAt, problemOf } from '../lib/problem';
import { useDraft } from '../lib/draft';
import { ProblemAlert } from './ProblemAlert';

interface Draft { name: string; address: string; port: number; username: string; connect_mode: string; key_source: string; ssh_key: string; ssh_key_path: string; base_dir: string; wheelhouse: string }
const EMPTY: Draft = { name: '', address: '', port: 22, username: 'root', connect_mode: 'direct', key_source: 'upload', ssh_key: '', ssh_key_path: '', base_dir: 'botfleet', wheelhouse: '' };

function Report({ data }: { data: Record<string, unknown> }) {
  return (
    <Table fz="xs" withTableBorder>
      <Table.Tbody>
        {Object.entries(data).map(([k, v]) => <Table.Tr key={k}><Table.Td>{k}</Table.Td><Table.Td><Code>{typeof v === 'object' ? JSON.stringify(v) : String(v)}</Code></Table.Td></Table.Tr>)}
      </Table.Tbody>
    </Table>
  );
}

export function AddHost({ onDone, resume }: { onDone?: () => void; resume?: Host }) {
  const [form, setForm, clear] = useDraft<Draft>('host-new', EMPTY);
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setForm((f) => ({ ...f, [k]: v }));
  const [host, setHost] = useState<Host | null>(resume ?? null);
  const [step, setStep] = useState(resume ? (resume.host_key_fingerprint ? 2 : 1) : 0);
  const [scan, setScan] = useState<{ fingerprint: string; key_type: string; accepted: string | null; matches: boolean | null } | null>(null);
  const [test, setTest] = useState<Record<string, unknown> | null>(null);
  const [provision, setProvision] = useState<Record<string, unknown> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const qc = useQueryClient();
  const feed = useFeed();
  const progress = host ? feed.filter((e) => e.kind === 'host.provision' && e.host_id === host.id).reverse() : [];

  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try { await fn(); } catch (e) { setError(e); } finally { setBusy(false); qc.invalidateQueries({ queryKey: ['hosts'] }); }
  };
  const id = host?.id ?? '';
  const create = (e: FormEvent) => {
    e.preventDefault();
    run(async () => {
      const out = await call(api.POST('/api/v1/hosts', { body: {
        name: form.name, address: form.address, port: form.port, username: form.username, connect_mode: form.connect_mode, base_dir: form.base_dir || 'botfleet', tunnel_port: 18750,
        ...(form.key_source === 'path' ? { ssh_key_path: form.ssh_key_path } : { ssh_key: form.ssh_key }),
      } }));
      setHost(out);
      clear();
      setStep(1);
    });
  };
  const doScan = () => run(async () => setScan(await call(api.POST('/api/v1/hosts/{host_id}/scan', { params: { path: { host_id: id } } }))));
  const accept = () => run(async () => {
    setHost(await call(api.POST('/api/v1/hosts/{host_id}/accept', { params: { path: { host_id: id } }, body: { fingerprint: scan!.fingerprint } })));
    setStep(2);
  });
  const doTest = () => run(async () => {
    setTest(await call(api.POST('/api/v1/hosts/{host_id}/test', { params: { path: { host_id: id } } })) as Record<string, unknown>);
    setStep(3);
  });
  const doProvision = () => run(async () => {
    setProvision(await call(api.POST('/api/v1/hosts/{host_id}/provision', { params: { path: { host_id: id } }, body: { wait: 90, force: false, wheelhouse: form.wheelhouse || null } })) as Record<string, unknown>);
    setStep(4);
  });
  const p = problemOf(error);

  return (
    <Paper withBorder p="md" data-testid="add-host">
      <Stepper active={step} size="sm" allowNextStepsSelect={false}>
        <Stepper.Step label="Address and key">
          <form onSubmit={create} aria-label="New host">
            <Stack gap="xs">
              <Group grow align="start">
                <TextInput label="Name" required value={form.name} onChange={(e) => set('name', e.currentTarget.value)} error={problemAt(p, 'name')} />
                <TextInput label="Address" placeholder="203.0.113.7 or vps.example.com" required value={form.address} onChange={(e) => set('address', e.currentTarget.value)} error={problemAt(p, 'address')} />
                <NumberInput label="SSH port" min={1} max={65535} value={form.port} onChange={(v) => set('port', Number(v) || 22)} error={problemAt(p, 'port')} />
                <TextInput label="User" value={form.username} onChange={(e) => set('username', e.currentTarget.value)} error={problemAt(p, 'username')} />
              </Group>
              <Group align="end" grow>
                <TextInput label="Directory on the host" description="botfleet's files; relative = under the user's home" value={form.base_dir} onChange={(e) => set('base_dir', e.currentTarget.value)} error={problemAt(p, 'base_dir')} />
                <SegmentedControl value={form.connect_mode} onChange={(v) => set('connect_mode', v)} data={[{ value: 'direct', label: 'Agent dials the api directly' }, { value: 'tunnel', label: 'Through a reverse SSH tunnel' }]} />
              </Group>
              <SegmentedControl value={form.key_source} onChange={(v) => set('key_source', v)} data={[{ value: 'upload', label: 'Private key (stored encrypted)' }, { value: 'path', label: 'Key file on this machine' }]} />
              {form.key_source === 'upload' ? (
                <>
                  <FileInput label="Upload a private key" placeholder="id_ed25519" onChange={async (f) => f && set('ssh_key', await f.text())} />
                  <Textarea label="or paste it" autosize minRows={3} maxRows={6} value={form.ssh_key} onChange={(e) => set('ssh_key', e.currentTarget.value)} error={problemAt(p, 'ssh_key')}
                    styles={{ input: { fontFamily: 'var(--mantine-font-family-monospace)', fontSize: 11 } }} />
                </>
              ) : <TextInput label="Private key path" placeholder="/home/me/.ssh/id_ed25519" value={form.ssh_key_path} onChange={(e) => set('ssh_key_path', e.currentTarget.value)} error={problemAt(p, 'ssh_key_path')} />}
              <ProblemAlert error={error} />
              <Group><Button type="submit" loading={busy} data-testid="host-create">Save host</Button></Group>
            </Stack>
          </form>
        </Stepper.Step>
        <Stepper.Step label="Host key">
          <Stack gap="xs">
            <Text size="sm">botfleet pins the SSH host key on first use and refuses a changed key. Compare the fingerprint with the one your provider shows (or <Code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</Code> on the host).</Text>
            {scan ? (
              <Alert color={scan.matches === false ? 'red' : 'blue'} title={scan.matches === false ? 'The key changed since it was accepted!' : 'Host key'}>
                <Text size="sm">{scan.key_type}</Text>
                <Code block data-testid="fingerprint">{scan.fingerprint}</Code>
                {scan.accepted && <Text size="xs" mt={4}>Accepted before: {scan.accepted}</Text>}
              </Alert>
            ) : null}
            <ProblemAlert error={error} />
            <Group>
              <Button variant={scan ? 'default' : 'filled'} onClick={doScan} loading={busy && !scan} data-testid="host-scan">{scan ? 'Scan again' : 'Scan host key'}</Button>
              {scan && <Button onClick={accept} loading={busy} data-testid="host-accept">This is my host: trust this key</Button>}
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Test">
          <Stack gap="xs">
            <Text size="sm">Log in over SSH and check Python, disk and what is installed.</Text>
            {test && <Report data={test} />}
            <ProblemAlert error={error} />
            <Group><Button onClick={doTest} loading={busy} data-testid="host-test">Test connection</Button></Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Provision">
          <Stack gap="xs">
            <Text size="sm">Install the botfleet agent on the host and start it; it then dials in and appears online.</Text>
            {progress.length > 0 && (
              <Stack gap={2} data-testid="provision-progress">
                {progress.map((e) => { const d = e.data as { step?: string; detail?: string }; return <Text key={e.id} size="xs">✓ {d.step}{d.detail ? `: ${d.detail}` : ''}</Text>; })}
              </Stack>
            )}
            <TextInput label="Wheelhouse (optional)" description="A directory of wheels on this machine, for hosts that cannot reach PyPI" value={form.wheelhouse} onChange={(e) => set('wheelhouse', e.currentTarget.value)} error={problemAt(p, 'wheelhouse')} />
            <ProblemAlert error={error} />
            <Group><Button onClick={doProvision} loading={busy} data-testid="host-provision">Provision agent</Button></Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Completed>
          <Stack gap="xs">
            <Alert color="green" title={`${host?.name} is ready`}>The agent is installed{provision?.agent_version ? ` (version ${String(provision.agent_version)})` : ''}. Create instances on it, or <Link to={`/hosts/${id}`}>open the host</Link>.</Alert>
            {provision && <Report data={provision} />}
            <Group><Button onClick={onDone}>Close</Button></Group>
          </Stack>
        </Stepper.Completed>
      </Stepper>
    </Paper>
  );
}
