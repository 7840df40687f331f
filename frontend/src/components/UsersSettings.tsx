/** Settings > Users (admins: create users, make or unmake admins, set a password, delete, each
 * behind a dialog that shows the api's error where it happened) and Settings > Your password
 * (everyone, with the current password). Passwords are never kept in drafts or storage. */
import { useState, type FormEvent, type ReactNode } from 'react';
import {
  Badge, Button, Checkbox, Group, Modal, Paper, PasswordInput, Stack, Table, Text, TextInput, Title, Tooltip,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call } from '../api/client';
import type { components } from '../api/schema';
import { problemAt, problemOf } from '../lib/problem';
import { formatTime } from '../lib/states';
import { ProblemAlert } from './ProblemAlert';

export type User = components['schemas']['UserOut'];
export type Me = components['schemas']['Me'];

/** Who is logged in (id and admin flag), shared by the settings sections. */
export const useMe = () => useQuery({ queryKey: ['me'], queryFn: () => call(api.GET('/api/v1/auth/me')) });

/** Submit state of a small form: `run` calls the api, keeps its error, says when it worked. */
function useSubmit() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, reset: () => setError(null) };
}

/** Change your own password: current, new, new again. */
export function MyPasswordSettings() {
  const me = useMe();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [done, setDone] = useState(false);
  const { error, busy, run } = useSubmit();
  const problem = problemOf(error);
  const mismatch = again !== '' && again !== next ? 'The two new passwords differ' : undefined;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    if (!me.data || mismatch) return;
    const id = me.data.id;
    if (await run(() => call(api.PATCH('/api/v1/users/{user_id}', { params: { path: { user_id: id } }, body: { password: next, current_password: current } })))) {
      setCurrent(''); setNext(''); setAgain(''); setDone(true);
    }
  };
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="password-title">
      <Title order={3} id="password-title">Your password</Title>
      <Text size="sm" c="dimmed" mb="xs">At least 8 characters; a few words make a strong one. Your other login sessions end; API tokens keep working.</Text>
      <form onSubmit={submit} aria-label="Change your password">
        <Stack maw={360} gap="xs">
          <input type="text" name="username" autoComplete="username" value={me.data?.username ?? ''} readOnly hidden />
          <PasswordInput label="Current password" autoComplete="current-password" required value={current}
            onChange={(e) => setCurrent(e.currentTarget.value)} error={problemAt(problem, 'current_password')} />
          <PasswordInput label="New password" autoComplete="new-password" required value={next}
            onChange={(e) => setNext(e.currentTarget.value)} error={problemAt(problem, 'password')} />
          <PasswordInput label="New password again" autoComplete="new-password" required value={again}
            onChange={(e) => setAgain(e.currentTarget.value)} error={mismatch} />
          {problem && !problem.key && <ProblemAlert error={error} />}
          {done && <Text size="sm" role="status">✓ Password changed.</Text>}
          <Group><Button type="submit" loading={busy} disabled={!me.data}>Change password</Button></Group>
        </Stack>
      </form>
    </Paper>
  );
}

function NewUserForm() {
  const qc = useQueryClient();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [isAdmin, setIsAdmin] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const { error, busy, run } = useSubmit();
  const problem = problemOf(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setCreated(null);
    if (await run(() => call(api.POST('/api/v1/users', { body: { username, password, is_admin: isAdmin } })))) {
      setCreated(username);
      setUsername(''); setPassword(''); setIsAdmin(false);
      qc.invalidateQueries({ queryKey: ['users'] });
    }
  };
  return (
    <form onSubmit={submit} aria-label="Create user">
      <Title order={4} mt="md" mb="xs">New user</Title>
      <Group align="start">
        <TextInput label="User name" description="Letters, digits, . _ -" required autoComplete="off" value={username}
          onChange={(e) => setUsername(e.currentTarget.value)} error={problemAt(problem, 'username')} />
        <PasswordInput label="Password" description="At least 8 characters" required autoComplete="new-password" value={password} w={220}
          onChange={(e) => setPassword(e.currentTarget.value)} error={problemAt(problem, 'password')} />
        <Checkbox label="Admin" mt={50} checked={isAdmin} onChange={(e) => setIsAdmin(e.currentTarget.checked)} />
        <Button type="submit" mt={44} loading={busy}>Create user</Button>
      </Group>
      {problem && !problemAt(problem, 'username') && !problemAt(problem, 'password') && <ProblemAlert error={error} />}
      {created && <Text size="sm" role="status" mt="xs">✓ User {created} created: give them the password, they log in and can change it under Settings.</Text>}
    </form>
  );
}

type Action = { kind: 'delete' | 'admin' | 'password'; user: User };

/** One dialog for every row action; it stays open with the api's error when the action fails. */
function UserAction({ action, onClose }: { action: Action; onClose: () => void }) {
  const qc = useQueryClient();
  const [password, setPassword] = useState('');
  const { error, busy, run } = useSubmit();
  const { user, kind } = action;
  const path = { params: { path: { user_id: user.id } } };
  const go = async (e?: FormEvent) => {
    e?.preventDefault();
    const ok = await run(async () => {
      if (kind === 'delete') await call(api.DELETE('/api/v1/users/{user_id}', path));
      if (kind === 'admin') await call(api.PATCH('/api/v1/users/{user_id}', { ...path, body: { is_admin: !user.is_admin } }));
      if (kind === 'password') await call(api.PATCH('/api/v1/users/{user_id}', { ...path, body: { password } }));
    });
    if (ok) {
      qc.invalidateQueries({ queryKey: ['users'] });
      qc.invalidateQueries({ queryKey: ['me'] });
      onClose();
    }
  };
  const text: Record<Action['kind'], { title: string; body: ReactNode; button: string; color?: string }> = {
    delete: { title: `Delete ${user.username}?`, body: 'Their login sessions and API tokens stop working at once. The event history keeps their name.', button: 'Delete user', color: 'red' },
    admin: user.is_admin
      ? { title: `Remove admin from ${user.username}?`, body: 'They keep using the fleet but can no longer manage users.', button: 'Remove admin' }
      : { title: `Make ${user.username} an admin?`, body: 'Admins create, change and delete users, including you.', button: 'Make admin' },
    password: { title: `Set a new password for ${user.username}`, body: 'Their login sessions end; give them the new password. Their API tokens keep working.', button: 'Set password' },
  };
  const t = text[kind];
  return (
    <Modal opened onClose={onClose} title={t.title} centered>
      <form onSubmit={go}>
        <Text size="sm">{t.body}</Text>
        {kind === 'password' && (
          <PasswordInput mt="sm" label="New password" required autoComplete="new-password" data-autofocus value={password}
            onChange={(e) => setPassword(e.currentTarget.value)} error={problemAt(problemOf(error), 'password')} />
        )}
        {!problemAt(problemOf(error), 'password') && <ProblemAlert error={error} />}
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={onClose}>Cancel</Button>
          <Button type="submit" color={t.color} loading={busy} data-autofocus={kind !== 'password' || undefined}>{t.button}</Button>
        </Group>
      </form>
    </Modal>
  );
}

/** The users table with its actions; `meId` marks (and protects) your own row. */
export function UserTable({ users, meId, onAction }: { users: User[]; meId: string; onAction: (a: Action) => void }) {
  return (
    <Table.ScrollContainer minWidth={600}>
      <Table striped aria-label="Users">
        <Table.Thead><Table.Tr><Table.Th>User</Table.Th><Table.Th>Role</Table.Th><Table.Th>Created</Table.Th><Table.Th /></Table.Tr></Table.Thead>
        <Table.Tbody>
          {users.map((u) => (
            <Table.Tr key={u.id} data-testid={`user-${u.username}`}>
              <Table.Td>{u.username}{u.id === meId && <Badge size="sm" variant="light" ml={6}>you</Badge>}</Table.Td>
              <Table.Td>{u.is_admin ? <Badge color="grape" variant="light">admin</Badge> : 'user'}</Table.Td>
              <Table.Td>{formatTime(u.created_at)}</Table.Td>
              <Table.Td>
                <Group gap={6} justify="flex-end" wrap="nowrap">
                  <Button size="compact-sm" variant="default" onClick={() => onAction({ kind: 'admin', user: u })}>{u.is_admin ? 'Remove admin' : 'Make admin'}</Button>
                  {u.id !== meId && <Button size="compact-sm" variant="default" onClick={() => onAction({ kind: 'password', user: u })}>Set password</Button>}
                  {u.id === meId ? (
                    <Tooltip label="Another admin can delete your account"><Button size="compact-sm" variant="light" color="red" data-disabled aria-disabled onClick={(e) => e.preventDefault()}>Delete</Button></Tooltip>
                  ) : (
                    <Button size="compact-sm" variant="light" color="red" aria-label={`Delete ${u.username}`} onClick={() => onAction({ kind: 'delete', user: u })}>Delete</Button>
                  )}
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** The Users section: admins only (others see who to ask). */
export default function UsersSettings() {
  const me = useMe();
  const isAdmin = !!me.data?.is_admin;
  const users = useQuery({
    queryKey: ['users'], enabled: isAdmin,
    queryFn: async () => (await call(api.GET('/api/v1/users', { params: { query: { limit: 1000 } } }))).items,
  });
  const [action, setAction] = useState<Action | null>(null);
  if (!me.data) return null;
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="users-title">
      <Title order={3} id="users-title">Users</Title>
      {!isAdmin ? (
        <Text size="sm" c="dimmed">Only admins manage users: ask one to add people or make you an admin.</Text>
      ) : (
        <>
          <Text size="sm" c="dimmed" mb="xs">One user per person, so the event history says who did what.</Text>
          {users.error ? <ProblemAlert error={users.error} /> : null}
          {users.data && <UserTable users={users.data} meId={me.data.id} onAction={setAction} />}
          {users.data?.length === 1 && (
            <Text size="sm" c="dimmed" mt="xs" data-testid="users-empty">Only you so far. Create a user below for each person who runs this fleet.</Text>
          )}
          <NewUserForm />
          {action && <UserAction action={action} onClose={() => setAction(null)} />}
        </>
      )}
    </Paper>
  );
}
