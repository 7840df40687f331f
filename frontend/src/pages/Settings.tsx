/** Settings: one component per section, each owning its data and errors. Adding a section is
 * one line in SECTIONS (plus its import). */
import type { ComponentType } from 'react';
import { Stack, Title } from '@mantine/core';
import AccountsSettings from '../components/AccountsSettings';
import TokensSettings from '../components/TokensSettings';
import UsersSettings, { MyPasswordSettings } from '../components/UsersSettings';

const SECTIONS: [string, ComponentType][] = [
  ['accounts', AccountsSettings],
  ['tokens', TokensSettings],
  ['password', MyPasswordSettings],
  ['users', UsersSettings],
];

export default function Settings() {
  return (
    <Stack maw={960}>
      <Title order={2}>Settings</Title>
      {SECTIONS.map(([key, Section]) => <Section key={key} />)}
    </Stack>
  );
}
