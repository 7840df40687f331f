/** Settings > API tokens: create a token for a script (shown once, with a copy button), list
 * your tokens and login sessions (never the tokens themselves), revoke one after a confirmation.
 * A revoked token is refused by every api replica at once. */
import { useState, type FormEvent } from 'react';
import { Alert, Badge, Button, Code, CopyButton, Group, Modal, Paper, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import type { components } from '../api/schema';
import { problemAt, problemOf } from '../lib/problem';
import { session } from '../lib/session';
import { formatTime } from '../lib/states';
import { ProblemAlert } from './ProblemAlert';

export type TokenInfo = components['schemas']['TokenInfo'];

/** Lifetimes offered for a new token (days; '' = never expires). */
export const TOKEN_LIFETIMES = [
  { value: '', label: 'Never' },
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '365', label: '1 year' },
];

/** The new token, shown this once, with a copy button and how to use it. */
export function NewTokenNotice({ token, name, onDone }: { token: string; name: string; onDone: () => void }) {
  return (
    <Alert color="green" mt="sm" title={`Token "${name}" created: copy it now, it is not shown again`} data-testid="new-token-notice">
      <Stack gap="xs">
        <Group gap="xs" wrap="nowrap">
          <Code data-testid="new-token" style={{ wordBreak: 'break-all' }}>{token}</Code>
          <CopyButton value={token}>
            {({ copied, copy }) => <Button size="compact-sm" onClick={copy} color={copied ? 'teal' : undefined}>{copied ? 'Copied' : 'Copy token'}</Button>}
          </CopyButton>
        </Group>
        <Text size="sm">Send it as <Code>Authorization: Bearer TOKEN</Code>, e.g. <Code>curl -H "Authorization: Bearer $TOKEN" {window.location.origin}/api/v1/instances</Code></Text>
        <Group><Button size="compact-sm" variant="default" onClick={onDone}>I have copied it</Button></Group>
      </Stack>
    </Alert>
  );
}

/** A table of tokens or sessions; `onRevoke` runs after the user confirmed and may throw (the
 * error is shown in the confirmation dialog, which then stays open). */
export function TokenTable({ tokens, onRevoke, label }: { tokens: TokenInfo[]; onRevoke: (t: TokenInfo) => Promise<void>; label: string }) {
  const [confirm, setConfirm] = useState<TokenInfo | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const close = () => { setConfirm(null); setError(null); };
  const revoke = async () => {
    if (!confirm) return;
    setBusy(true);
    setError(null);
    try {
      await onRevoke(confirm);
      close();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Table.ScrollContainer minWidth={600}>
        <Table striped aria-label={label}>
          <Table.Thead>
            <Table.Tr><Table.Th>Name</Table.Th><Table.Th>Created</Table.Th><Table.Th>Expires</Table.Th><Table.Th>Last used</Table.Th><Table.Th /></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {tokens.map((t) => (
              <Table.Tr key={t.id} data-testid={`token-${t.name}`}>
                <Table.Td>{t.name} {t.current && <Badge size="sm" variant="light" ml={4}>this {t.kind === 'session' ? 'session' : 'token'}</Badge>}</Table.Td>
                <Table.Td>{formatTime(t.created_at)}</Table.Td>
                <Table.Td>{t.expires_at ? formatTime(t.expires_at) : 'never'}</Table.Td>
                <Table.Td>{t.last_used_at ? formatTime(t.last_used_at) : 'not yet'}</Table.Td>
                <Table.Td ta="right">
                  <Button size="compact-sm" variant="light" color="red" onClick={() => setConfirm(t)} aria-label={`Revoke ${t.name}`}>Revoke</Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      <Modal opened={!!confirm} onClose={close} title={`Revoke "${confirm?.name ?? ''}"?`} centered>
        <Text size="sm">
          {confirm?.current
            ? 'This is what you are logged in with here: revoking it logs you out.'
            : confirm?.kind === 'session'
              ? 'That login session ends at once; whoever uses it must log in again.'
              : 'Scripts that send this token are refused from now on. This cannot be undone: create a new token for them.'}
        </Text>
        <ProblemAlert error={error} />
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={close}>Cancel</Button>
          <Button color="red" onClick={revoke} loading={busy} data-autofocus>Revoke</Button>
        </Group>
      </Modal>
    </>
  );
}

export default function TokensSettings() {
  const qc = useQueryClient();
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => call(api.GET('/api/v1/auth/tokens')) });
  const [name, setName] = useState('');
  const [lifetime, setLifetime] = useState('');
  const [created, setCreated] = useState<{ token: string; name: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body = lifetime ? { name, expires_in_days: Number(lifetime) } : { name };
      const out = await call(api.POST('/api/v1/auth/tokens', { body }));
      setCreated({ token: out.token, name });
      setName('');
      qc.invalidateQueries({ queryKey: ['tokens'] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (t: TokenInfo) => {
    await call(api.DELETE('/api/v1/auth/tokens/{token_id}', { params: { path: { token_id: t.id } } }));
    if (t.current) {  // revoked what this browser is logged in with: back to the login page
      qc.clear();
      session.loggedOut();
      return;
    }
    await qc.invalidateQueries({ queryKey: ['tokens'] });
  };
  const problem = problemOf(error);
  const apiTokens = tokens.data?.filter((t) => t.kind === 'api') ?? [];
  const sessions = tokens.data?.filter((t) => t.kind === 'session') ?? [];
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="tokens-title">
      <Title order={3} id="tokens-title">API tokens</Title>
      <Text size="sm" c="dimmed" mb="xs">A long-lived token lets a script call the api as you: send <Code>Authorization: Bearer TOKEN</Code>. It is shown once.</Text>
      <form onSubmit={submit} aria-label="Create API token">
        <Group align="start">
          <TextInput label="Token name" description="What uses it, e.g. grafana" required maxLength={128} value={name}
            onChange={(e) => setName(e.currentTarget.value)} error={problemAt(problem, 'name')} />
          <Select label="Expires" description="After that it is refused" data={TOKEN_LIFETIMES} value={lifetime} data-testid="token-lifetime"
            onChange={(v) => setLifetime(v ?? '')} allowDeselect={false} w={140} error={problemAt(problem, 'expires_in_days')} />
          <Button type="submit" mt={44} loading={busy}>Create token</Button>
        </Group>
      </form>
      {problem && !problemAt(problem, 'name') && !problemAt(problem, 'expires_in_days') && <ProblemAlert error={error} />}
      {created && <NewTokenNotice token={created.token} name={created.name} onDone={() => setCreated(null)} />}
      <Title order={4} mt="md" mb="xs">Your tokens</Title>
      {tokens.error ? <ProblemAlert error={tokens.error} /> : null}
      {tokens.data && apiTokens.length === 0 && (
        <Text size="sm" c="dimmed" data-testid="tokens-empty">No API tokens yet. Name one above (after the script that will use it) and create it.</Text>
      )}
      {apiTokens.length > 0 && <TokenTable tokens={apiTokens} onRevoke={revoke} label="API tokens" />}
      <Title order={4} mt="md" mb="xs">Login sessions</Title>
      <Text size="sm" c="dimmed" mb="xs">Browsers logged in as you. Revoke one you do not recognise, then change your password.</Text>
      {sessions.length > 0 && <TokenTable tokens={sessions} onRevoke={revoke} label="Login sessions" />}
    </Paper>
  );
}
