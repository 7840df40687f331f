import { describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import { NewTokenNotice, TokenTable, type TokenInfo } from './TokensSettings';
import { UserTable, type User } from './UsersSettings';
import { ApiError, toProblem } from '../lib/problem';

// No modal transitions: a closed dialog leaves the page at once.
const theme = { components: { Modal: { defaultProps: { transitionProps: { duration: 0 } } } } };
const wrap = (ui: React.ReactNode) => render(<MantineProvider theme={theme}>{ui}</MantineProvider>);

const token = (over: Partial<TokenInfo>): TokenInfo => ({
  id: 't1', name: 'grafana', kind: 'api', created_at: '2026-11-26T10:00:00Z', expires_at: null,
  last_used_at: null, current: false, ...over,
});

describe('TokenTable', { timeout: 20_000 }, () => {
  it('lists tokens without their secret and says when one was never used', () => {
    wrap(<TokenTable tokens={[token({}), token({ id: 't2', name: 'cron', last_used_at: '2026-11-26T11:00:00Z' })]} onRevoke={vi.fn()} label="API tokens" />);
    const row = screen.getByTestId('token-grafana');
    expect(row.textContent).toContain('never');   // expires
    expect(row.textContent).toContain('not yet'); // last used
    expect(screen.getByTestId('token-cron').textContent).not.toContain('not yet');
  });

  it('revokes only after the confirmation, and keeps the dialog open with the error when it fails', async () => {
    const onRevoke = vi.fn().mockRejectedValueOnce(new ApiError(toProblem(404, {
      title: 'Not found', status: 404, detail: "you have no token with id 't1'", key: 'token_id' }))).mockResolvedValueOnce(undefined);
    wrap(<TokenTable tokens={[token({})]} onRevoke={onRevoke} label="API tokens" />);
    fireEvent.click(screen.getByRole('button', { name: 'Revoke grafana' }));
    expect(onRevoke).not.toHaveBeenCalled();
    expect(await screen.findByText(/Scripts that send this token are refused/)).toBeTruthy();
    const confirm = () => screen.getAllByRole('button', { name: 'Revoke' }).at(-1)!;
    fireEvent.click(confirm());
    expect((await screen.findByRole('alert')).textContent).toContain("you have no token with id 't1'");
    expect(onRevoke).toHaveBeenCalledTimes(1);
    fireEvent.click(confirm());
    await waitFor(() => expect(screen.queryByRole('alert')).toBeNull());
    expect(onRevoke).toHaveBeenCalledTimes(2);
  });

  it('warns that revoking the current session logs you out', async () => {
    wrap(<TokenTable tokens={[token({ kind: 'session', name: 'login', current: true, expires_at: '2026-11-27T10:00:00Z' })]} onRevoke={vi.fn()} label="Login sessions" />);
    expect(screen.getByTestId('token-login').textContent).toContain('this session');
    fireEvent.click(screen.getByRole('button', { name: 'Revoke login' }));
    expect(await screen.findByText(/revoking it logs you out/)).toBeTruthy();
  });
});

describe('NewTokenNotice', { timeout: 20_000 }, () => {
  it('shows the token once with a copy button and how to send it', () => {
    const onDone = vi.fn();
    wrap(<NewTokenNotice token="s3cr3t-token" name="grafana" onDone={onDone} />);
    expect(screen.getByTestId('new-token').textContent).toBe('s3cr3t-token');
    expect(screen.getByRole('button', { name: 'Copy token' })).toBeTruthy();
    expect(screen.getByTestId('new-token-notice').textContent).toContain('Authorization: Bearer');
    fireEvent.click(screen.getByRole('button', { name: 'I have copied it' }));
    expect(onDone).toHaveBeenCalled();
  });
});

describe('UserTable', { timeout: 20_000 }, () => {
  const users: User[] = [
    { id: 'u1', username: 'admin', is_admin: true, created_at: '2026-11-26T10:00:00Z' },
    { id: 'u2', username: 'alice', is_admin: false, created_at: '2026-11-26T10:05:00Z' },
  ];

  it('marks your own row and offers no way to delete yourself', () => {
    const onAction = vi.fn();
    wrap(<UserTable users={users} meId="u1" onAction={onAction} />);
    expect(screen.getByTestId('user-admin').textContent).toContain('you');
    expect(screen.queryByRole('button', { name: 'Delete admin' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Delete alice' }));
    expect(onAction).toHaveBeenCalledWith({ kind: 'delete', user: users[1] });
    fireEvent.click(screen.getAllByRole('button', { name: 'Make admin' })[0]);
    expect(onAction).toHaveBeenLastCalledWith({ kind: 'admin', user: users[1] });
  });
});
