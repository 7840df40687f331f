/** An instance's config: edit and save a new version (inline errors from the 422 problem's
 * `key`), version history, diff between two versions, rollback to an old one. */
import { useEffect, useMemo, useState } from 'react';
import { Badge, Button, Code, Grid, Group, Paper, Select, Stack, Table, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import type { ConfigVersion, Instance } from '../api/types';
import { problemOf } from '../lib/problem';
import { formatTime } from '../lib/states';
import { useDraft } from '../lib/draft';
import { ProblemAlert } from './ProblemAlert';

/** Line (0-based) of the last segment of a dotted key in pretty JSON text, or -1. */
export function lineOfKey(text: string, key: string): number {
  const parts = key.split('.');
  const lines = text.split('\n');
  let from = 0;
  for (const part of parts) {
    const i = lines.findIndex((l, n) => n >= from && l.includes(`"${part}"`));
    if (i < 0) return -1;
    from = i;
  }
  return from;
}

export function ConfigEditor({ instance }: { instance: Instance }) {
  const id = instance.id;
  const qc = useQueryClient();
  const versions = useQuery({ queryKey: ['configs', id], queryFn: () => call(api.GET('/api/v1/instances/{instance_id}/configs', { params: { path: { instance_id: id } } })) as Promise<ConfigVersion[]> });
  const current = versions.data?.find((v) => v.version === instance.config_version) ?? versions.data?.at(-1);
  const [draft, setDraft, clearDraft] = useDraft<{ text: string; comment: string; base: number }>(`config-${id}`, { text: '', comment: '', base: 0 });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [pair, setPair] = useState<{ from: string | null; to: string | null }>({ from: null, to: null });

  useEffect(() => {
    if (current && (!draft.text || draft.base === 0)) setDraft({ text: JSON.stringify(current.document, null, 2), comment: '', base: current.version });
  }, [current?.version]); // eslint-disable-line react-hooks/exhaustive-deps

  const diff = useQuery({
    queryKey: ['config-diff', id, pair.from, pair.to],
    enabled: !!pair.from && !!pair.to,
    queryFn: () => call(api.GET('/api/v1/instances/{instance_id}/configs/diff', { params: { path: { instance_id: id }, query: { from: Number(pair.from), to: Number(pair.to) } } })) as Promise<{ changes: { key: string; from?: unknown; to?: unknown }[]; diff: string }>,
  });

  const save = async (body: { config_text?: string; config?: Record<string, unknown>; comment: string }) => {
    setBusy(true);
    setError(null);
    try {
      const out = await call(api.PUT('/api/v1/instances/{instance_id}/config', { params: { path: { instance_id: id } }, body }));
      clearDraft();
      setDraft({ text: JSON.stringify(out.document, null, 2), comment: '', base: out.version });
      await qc.invalidateQueries({ queryKey: ['configs', id] });
      await qc.invalidateQueries({ queryKey: ['instance', id] });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const p = problemOf(error);
  const errLine = p?.key ? lineOfKey(draft.text, p.key) : -1;
  const options = useMemo(() => (versions.data ?? []).map((v) => ({ value: String(v.version), label: `v${v.version} ${v.comment ? '· ' + v.comment : ''}` })), [versions.data]);

  return (
    <Grid>
      <Grid.Col span={{ base: 12, lg: 7 }}>
        <Stack gap="xs">
          <Group justify="space-between">
            <Title order={4}>Edit config</Title>
            <Text size="xs" c="dimmed">Editing from v{draft.base}; a running bot uses a new version from its next (re)start.</Text>
          </Group>
          <Textarea aria-label="Config (JSON or HJSON)" value={draft.text} onChange={(e) => setDraft({ ...draft, text: e.currentTarget.value })}
            autosize minRows={16} maxRows={30} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)", fontSize: 12 } }} data-testid="config-editor"
            error={p?.key ? `${p.key}: ${p.detail}${errLine >= 0 ? ` (near line ${errLine + 1})` : ''}` : undefined} />
          <Group>
            <TextInput placeholder="What changed (comment)" value={draft.comment} onChange={(e) => setDraft({ ...draft, comment: e.currentTarget.value })} style={{ flex: 1 }} aria-label="Comment" />
            <Button loading={busy} onClick={() => save({ config_text: draft.text, comment: draft.comment })} data-testid="config-save">Save as new version</Button>
            {current && <Button variant="default" onClick={() => { setError(null); setDraft({ text: JSON.stringify(current.document, null, 2), comment: '', base: current.version }); }}>Discard edits</Button>}
          </Group>
          {!p?.key && <ProblemAlert error={error} />}
        </Stack>
      </Grid.Col>
      <Grid.Col span={{ base: 12, lg: 5 }}>
        <Stack gap="xs">
          <Title order={4}>Versions</Title>
          <Table fz="xs" striped>
            <Table.Thead><Table.Tr><Table.Th>Version</Table.Th><Table.Th>Saved</Table.Th><Table.Th>Comment</Table.Th><Table.Th /></Table.Tr></Table.Thead>
            <Table.Tbody>
              {[...(versions.data ?? [])].reverse().map((v) => (
                <Table.Tr key={v.version}>
                  <Table.Td>v{v.version} {v.version === instance.config_version && <Badge size="xs">current</Badge>}</Table.Td>
                  <Table.Td>{formatTime(v.created_at)}</Table.Td>
                  <Table.Td>{v.comment || (v.version === 1 ? 'first version' : '—')}</Table.Td>
                  <Table.Td>
                    {v.version !== instance.config_version && (
                      <Button size="compact-xs" variant="default" onClick={() => save({ config: v.document as Record<string, unknown>, comment: `rollback to v${v.version}` })}>Roll back to this</Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Paper withBorder p="xs">
            <Group grow>
              <Select size="xs" label="Diff from" data={options} data-testid="diff-from" value={pair.from} onChange={(v) => setPair((s) => ({ ...s, from: v }))} />
              <Select size="xs" label="to" data={options} data-testid="diff-to" value={pair.to} onChange={(v) => setPair((s) => ({ ...s, to: v }))} />
            </Group>
            <ProblemAlert error={diff.error} />
            {diff.data && (diff.data.changes.length === 0 ? <Text size="xs" mt="xs">The two versions are the same.</Text> : (
              <Table fz="xs" mt="xs" data-testid="config-diff">
                <Table.Thead><Table.Tr><Table.Th>Key</Table.Th><Table.Th>From</Table.Th><Table.Th>To</Table.Th></Table.Tr></Table.Thead>
                <Table.Tbody>
                  {diff.data.changes.map((c) => (
                    <Table.Tr key={c.key}>
                      <Table.Td><Code>{c.key}</Code></Table.Td>
                      <Table.Td c="red">{'from' in c ? JSON.stringify(c.from) : '(absent)'}</Table.Td>
                      <Table.Td c="green">{'to' in c ? JSON.stringify(c.to) : '(absent)'}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            ))}
          </Paper>
        </Stack>
      </Grid.Col>
    </Grid>
  );
}
