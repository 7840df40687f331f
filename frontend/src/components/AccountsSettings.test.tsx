import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import { KeysForm, type Keys } from './AccountsSettings';
import { ApiError, toProblem } from '../lib/problem';

const bitget = { exchange: 'bitget', required: ['key', 'secret', 'passphrase'], optional: [] };
const wrap = (ui: React.ReactNode) => render(<MantineProvider>{ui}</MantineProvider>);
const input = (name: string) => screen.getByTestId(`field-${name}`) as HTMLInputElement;
const type = (name: string, value: string) => fireEvent.change(input(name), { target: { value } });

describe('KeysForm', () => {
  it("asks for the exchange's fields as hidden inputs and clears them once saved", async () => {
    const sent: Keys[] = [];
    wrap(<KeysForm exchange={bitget} submitLabel="Save" onSubmit={async (k) => { sent.push(k); }} />);
    for (const name of ['key', 'secret', 'passphrase']) expect(input(name).type).toBe('password');
    type('key', 'k-123456');
    type('secret', 'top-secret');
    type('passphrase', 'pp');
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(sent).toEqual([{ key: 'k-123456', secret: 'top-secret', passphrase: 'pp' }]));
    await waitFor(() => expect(input('secret').value).toBe(''));
    expect(input('key').value).toBe('');
    expect(document.body.textContent).not.toContain('top-secret');
  });

  it("keeps what was typed and shows the api's problem at the field it names", async () => {
    const refuse = async () => {
      throw new ApiError(toProblem(422, { title: 'Invalid input', status: 422,
        detail: 'passphrase: must not be blank', key: 'passphrase' }));
    };
    wrap(<KeysForm exchange={bitget} submitLabel="Save" onSubmit={refuse} />);
    type('key', 'k-123456');
    type('secret', 's');
    type('passphrase', ' ');
    fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await screen.findByRole('alert');
    expect(screen.getByRole('alert').textContent).toContain('must not be blank');
    expect(input('key').value).toBe('k-123456');
    expect(input('passphrase').closest('.mantine-InputWrapper-root')?.textContent).toContain('must not be blank');
  });
});
