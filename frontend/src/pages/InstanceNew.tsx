import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router-dom';
import { Button, FileInput, Group, Paper, SegmentedControl, Select, Stack, Switch, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { useHosts } from '../api/queries';
import { problemAt, problemOf } from '../lib/problem';
import { useDraft } from '../lib/draft';
import { ProblemAlert } from '../components/ProblemAlert';

/** Where another page (a job's Pareto member) leaves a config for this form. */
export const PREFILL_KEY = 'botfleet-new-instance-prefill';

const PROFILES = ['passivbot-v8', 'passivbot-v7'];

interface Form { name: string; profile: string; host: string; simulated: boolean; labels: string; source: string; example: string | null; config_text: string }
const EMPTY: Form = { name: '', profile: 'passivbot-v8', host: 'local', simulated: true, labels: '', source: 'example', example: null, config_text: '' };

export function parseLabels(text: string): Record<string, string> {
  return Object.fromEntries(text.split(/[,\s]+/).filter(Boolean).map((kv) => {
    const [k, ...v] = kv.split('=');
    return [k, v.join('=')];
  }));
}

export default function InstanceNew() {
  const [form, setForm, clear] = useDraft<Form>('instance-new', EMPTY);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const hosts = useHosts();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const examples = useQuery({ queryKey: ['examples'], queryFn: async () => (await fetch('/examples/index.json', { credentials: 'same-origin' })).json() as Promise<Record<string, string[]>>, staleTime: Infinity });
  const version = form.profile === 'passivbot-v7' ? 'v7' : 'v8';

  useEffect(() => {
    const prefill = sessionStorage.getItem(PREFILL_KEY);
    if (prefill) {
      sessionStorage.removeItem(PREFILL_KEY);
      const p = JSON.parse(prefill) as Partial<Form>;
      setForm((f) => ({ ...f, ...p, source: 'paste' }));
    }
  }, [setForm]);

  const loadExample = async (file: string | null) => {
    set('example', file);
    if (!file) return;
    const text = await (await fetch(`/examples/${version}/${file}`, { credentials: 'same-origin' })).text();
    setForm((f) => ({ ...f, example: file, config_text: text, name: f.name || file.replace(/\.json$/, '').replace(/_/g, '-').toLowerCase() }));
  };
  const loadFile = async (file: File | null) => {
    if (!file) return;
    const text = await file.text();
    setForm((f) => ({ ...f, config_text: text, name: f.name || file.name.replace(/\.h?json$/i, '') }));
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await call(api.POST('/api/v1/instances', {
        body: { name: form.name, profile: form.profile, host: form.host, simulated: form.simulated, config_text: form.config_text, labels: parseLabels(form.labels) },
      }));
      clear();
      qc.invalidateQueries({ queryKey: ['instances'] });
      navigate(`/instances/${out.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const p = problemOf(error);
  const configError = p?.key && !['name', 'profile', 'host', 'labels', 'simulated'].some((k) => problemAt(p, k)) ? `${p.key}: ${p.detail}` : undefined;

  return (
    <Stack maw={900}>
      <Title order={2}>New instance</Title>
      <Paper withBorder p="md">
        <form onSubmit={submit} aria-label="New instance">
          <Stack>
            <Group grow align="start">
              <TextInput label="Name" required value={form.name} onChange={(e) => set('name', e.currentTarget.value)} error={problemAt(p, 'name')} data-testid="name" />
              <Select label="Profile" data={PROFILES} value={form.profile} onChange={(v) => v && set('profile', v)} allowDeselect={false} error={problemAt(p, 'profile')} />
              <Select label="Host" data={(hosts.data ?? [{ name: 'local' }]).map((h) => h.name)} value={form.host} onChange={(v) => v && set('host', v)} allowDeselect={false} error={problemAt(p, 'host')} data-testid="host-select" />
            </Group>
            <Group grow align="start">
              <TextInput label="Labels" description="key=value, separated by spaces" value={form.labels} onChange={(e) => set('labels', e.currentTarget.value)} />
              <Switch mt="lg" label="Simulated (botfleet's passivbot stand-in; trades nothing)" checked={form.simulated} onChange={(e) => set('simulated', e.currentTarget.checked)} data-testid="simulated" />
            </Group>
            <div>
              <Text size="sm" fw={500} mb={4}>Config</Text>
              <SegmentedControl value={form.source} onChange={(v) => set('source', v)} data={[
                { value: 'example', label: 'Start from an example' }, { value: 'upload', label: 'Upload a file' }, { value: 'paste', label: 'Paste' },
              ]} mb="xs" />
              {form.source === 'example' && (
                <Select label={`passivbot ${version} example`} placeholder="Pick an example config" data={examples.data?.[version] ?? []} value={form.example} onChange={loadExample} searchable data-testid="example" mb="xs" />
              )}
              {form.source === 'upload' && <FileInput label="passivbot config (JSON or HJSON)" accept=".json,.hjson,application/json" onChange={loadFile} mb="xs" placeholder="Choose a file" />}
              <Textarea label="Config text (JSON or HJSON)" required autosize minRows={8} maxRows={20} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)", fontSize: 12 } }}
                value={form.config_text} onChange={(e) => set('config_text', e.currentTarget.value)} error={configError} data-testid="config-text" />
            </div>
            <ProblemAlert error={error} />
            <Group>
              <Button type="submit" loading={busy} data-testid="create">Create instance</Button>
              <Button variant="subtle" component={Link} to="/instances">Cancel</Button>
              <Button variant="subtle" color="gray" onClick={clear}>Reset form</Button>
            </Group>
          </Stack>
        </form>
      </Paper>
    </Stack>
  );
}
