import { useState, type FormEvent } from 'react';
import { Alert, Button, Code, CopyButton, Group, Paper, Stack, Text, TextInput, Title } from '@mantine/core';
import { api, call } from '../api/client';
import { problemAt, problemOf } from '../lib/problem';
import { ProblemAlert } from '../components/ProblemAlert';
import AccountsSettings from '../components/AccountsSettings';

function ApiTokens() {
  const [name, setName] = useState('');
  const [token, setToken] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const out = await call(api.POST('/api/v1/auth/tokens', { body: { name } }));
      setToken(out.token);
      setName('');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Paper withBorder p="md">
      <Title order={4}>API tokens</Title>
      <Text size="sm" c="dimmed" mb="xs">A long-lived token for scripts: send <Code>Authorization: Bearer TOKEN</Code>. It is shown once.</Text>
      <form onSubmit={submit}>
        <Group align="end">
          <TextInput label="Token name" required value={name} onChange={(e) => setName(e.currentTarget.value)} error={problemAt(problemOf(error), 'name')} />
          <Button type="submit">Create token</Button>
        </Group>
      </form>
      <ProblemAlert error={error} />
      {token && (
        <Alert color="green" mt="sm" title="Copy it now: it is not shown again">
          <Group><Code data-testid="new-token">{token}</Code><CopyButton value={token}>{({ copied, copy }) => <Button size="compact-xs" onClick={copy}>{copied ? 'Copied' : 'Copy'}</Button>}</CopyButton></Group>
        </Alert>
      )}
    </Paper>
  );
}

export default function Settings() {
  return (
    <Stack maw={900}>
      <Title order={2}>Settings</Title>
      <ApiTokens />
      <AccountsSettings />
      <Paper withBorder p="md">
        <Title order={4}>Users</Title>
        <Text size="sm" c="dimmed">Create users with <Code>botfleet create-user NAME [--admin]</Code>; listing and editing them here needs a users api (not there yet).</Text>
      </Paper>
    </Stack>
  );
}
