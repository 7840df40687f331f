/** Settings > Accounts: passivbot's api-keys.json entries, stored encrypted by botfleet and
 * written (0600) only to the hosts whose instances use them. Secrets are typed here once and
 * never shown again: the api returns only the key's last 4 characters. */
import { useState, type FormEvent } from 'react';
import { Badge, Button, Checkbox, Code, Group, Modal, Paper, PasswordInput, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call, type components } from '../api/client';
import { problemAt, problemOf } from '../lib/problem';
import { ProblemAlert } from './ProblemAlert';

type Account = components['schemas']['AccountOut'];
type Exchange = components['schemas']['ExchangeOut'];
/** The secret fields of an api-keys.json entry, as the api names them. */
export type Keys = Partial<Record<'key' | 'secret' | 'passphrase' | 'wallet_address' | 'private_key', string>> & { is_vault?: boolean };

const LABELS: Record<string, string> = {
  key: 'API key', secret: 'API secret', passphrase: 'Passphrase', wallet_address: 'Wallet address',
  private_key: 'Private key', is_vault: 'Vault account',
};

/** The inputs for one exchange's fields; cleared after a successful submit so no secret
 * stays on screen. `onSubmit` throws to keep the values and show the api's problem. */
export function KeysForm({ exchange, fields, submitLabel, onSubmit, head }: {
  exchange: Exchange | undefined;
  fields?: string[];
  submitLabel: string;
  onSubmit: (keys: Keys) => Promise<void>;
  head?: React.ReactNode;
}) {
  const [keys, setKeys] = useState<Keys>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const names = fields ?? (exchange ? [...exchange.required, ...exchange.optional] : []);
  const problem = problemOf(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await onSubmit(keys);
      setKeys({});
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} autoComplete="off">
      <Stack gap="xs">
        {head}
        {names.map((name) =>
          name === 'is_vault' ? (
            <Checkbox key={name} label={LABELS[name]} checked={!!keys.is_vault}
              onChange={(e) => setKeys({ ...keys, is_vault: e.currentTarget.checked })} />
          ) : (
            <PasswordInput key={name} label={LABELS[name] ?? name} required={exchange?.required.includes(name)}
              value={(keys[name as keyof Keys] as string | undefined) ?? ''} autoComplete="new-password"
              onChange={(e) => setKeys({ ...keys, [name]: e.currentTarget.value })}
              error={problemAt(problem, name)} data-testid={`field-${name}`} />
          ))}
        <ProblemAlert error={error} />
        <Group><Button type="submit" loading={busy} disabled={!exchange}>{submitLabel}</Button></Group>
      </Stack>
    </form>
  );
}

function AddAccount({ exchanges, onDone }: { exchanges: Exchange[]; onDone: () => void }) {
  const [name, setName] = useState('');
  const [exchange, setExchange] = useState<string | null>(null);
  const [nameError, setNameError] = useState<unknown>(null);
  const chosen = exchanges.find((e) => e.exchange === exchange);
  const create = async (keys: Keys) => {
    setNameError(null);
    try {
      await call(api.POST('/api/v1/accounts', { body: { name, exchange: exchange ?? '', ...keys } }));
    } catch (err) {
      const key = problemOf(err)?.key;
      if (key === 'name' || key === 'exchange') setNameError(err);
      throw err;
    }
    setName('');
    setExchange(null);
    onDone();
  };
  const p = problemOf(nameError);
  return (
    <KeysForm exchange={chosen} submitLabel="Save account" onSubmit={create} head={
      <Group grow align="start">
        <TextInput label="Name (config.live.user)" placeholder="binance_01" required value={name}
          onChange={(e) => setName(e.currentTarget.value)} error={problemAt(p, 'name')} data-testid="account-name" />
        <Select label="Exchange" placeholder="Pick one" required searchable allowDeselect={false} value={exchange} onChange={setExchange}
          data={exchanges.map((e) => e.exchange)} error={problemAt(p, 'exchange')} data-testid="account-exchange" />
      </Group>
    } />
  );
}

export default function AccountsSettings() {
  const qc = useQueryClient();
  const accounts = useQuery({ queryKey: ['accounts'], queryFn: () => call(api.GET('/api/v1/accounts')) });
  const exchanges = useQuery({ queryKey: ['account-exchanges'], queryFn: () => call(api.GET('/api/v1/accounts/exchanges')), staleTime: Infinity });
  const [rotating, setRotating] = useState<Account | null>(null);
  const [deleting, setDeleting] = useState<Account | null>(null);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: ['accounts'] });
  const rows = accounts.data ?? [];
  const exchangeOf = (a: Account) => exchanges.data?.find((e) => e.exchange === a.exchange);

  const remove = async () => {
    if (!deleting) return;
    setDeleteError(null);
    try {
      await call(api.DELETE('/api/v1/accounts/{account_id}', { params: { path: { account_id: deleting.id } } }));
      setDeleting(null);
      await refresh();
    } catch (err) {
      setDeleteError(err);
    }
  };

  return (
    <Paper withBorder p="md" data-testid="accounts-settings">
      <Title order={4}>passivbot accounts</Title>
      <Text size="sm" c="dimmed" mb="xs">
        Entries of passivbot's <Code>api-keys.json</Code>; an instance's <Code>config.live.user</Code> names one. botfleet stores
        them encrypted and writes each host's file (mode 0600) with only the accounts of its instances. Keys are never shown
        after saving; bots read them at start, so restart a bot after rotating its keys.
      </Text>
      <ProblemAlert error={accounts.error} />
      {rows.length === 0 && accounts.isSuccess ? (
        <Text size="sm" mb="sm" data-testid="accounts-empty">No account yet: add the one your configs name in <Code>live.user</Code>.</Text>
      ) : (
        <Table fz="sm" mb="md" data-testid="accounts-table">
          <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>Exchange</Table.Th><Table.Th>Key</Table.Th>
            <Table.Th>Used by</Table.Th><Table.Th>Updated</Table.Th><Table.Th /></Table.Tr></Table.Thead>
          <Table.Tbody>
            {rows.map((a) => (
              <Table.Tr key={a.id} data-testid={`account-${a.name}`}>
                <Table.Td><Code>{a.name}</Code></Table.Td>
                <Table.Td>{a.exchange}</Table.Td>
                <Table.Td><Code>{a.hint}</Code></Table.Td>
                <Table.Td>{a.used_by.length ? a.used_by.map((n) => <Badge key={n} variant="light" mr={4}>{n}</Badge>) : <Text size="xs" c="dimmed">none</Text>}</Table.Td>
                <Table.Td><Text size="xs">{new Date(a.updated_at).toLocaleString()}</Text></Table.Td>
                <Table.Td>
                  <Group gap="xs" justify="end">
                    <Button size="compact-xs" variant="light" onClick={() => setRotating(a)}>Rotate keys</Button>
                    <Button size="compact-xs" variant="light" color="red" onClick={() => { setDeleteError(null); setDeleting(a); }}>Delete</Button>
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Title order={5} mb="xs">Add an account</Title>
      <AddAccount exchanges={exchanges.data ?? []} onDone={refresh} />

      <Modal opened={!!rotating} onClose={() => setRotating(null)} title={rotating ? `Rotate the keys of ${rotating.name}` : ''} centered>
        {rotating && (
          <KeysForm exchange={exchangeOf(rotating)} submitLabel="Save new keys" onSubmit={async (keys) => {
            await call(api.PUT('/api/v1/accounts/{account_id}/keys', { params: { path: { account_id: rotating.id } }, body: keys }));
            setRotating(null);
            await refresh();
          }} head={<Text size="sm">The hosts running {rotating.used_by.join(', ') || 'no instance of it'} get the new keys at once; running bots use them after a restart.</Text>} />
        )}
      </Modal>
      <Modal opened={!!deleting} onClose={() => setDeleting(null)} title={deleting ? `Delete account ${deleting.name}?` : ''} centered>
        <Text size="sm">Its keys are removed from botfleet and from every host.</Text>
        <ProblemAlert error={deleteError} />
        <Group justify="end" mt="md">
          <Button variant="default" onClick={() => setDeleting(null)}>Cancel</Button>
          <Button color="red" onClick={remove} data-testid="confirm-delete">Delete</Button>
        </Group>
      </Modal>
    </Paper>
  );
}
