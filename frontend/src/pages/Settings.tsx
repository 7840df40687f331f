/** Settings: one component per section, each owning its data and errors. Adding a section is
 * one line in SECTIONS (plus its import). */
import type { ComponentType } from 'react';
import { Code, Paper, Stack, Text, Title } from '@mantine/core';
import TokensSettings from '../components/TokensSettings';
import UsersSettings, { MyPasswordSettings } from '../components/UsersSettings';

function AccountsPlaceholder() {
  return (
    <Paper withBorder p="md" component="section">
      <Title order={3}>passivbot accounts</Title>
      <Text size="sm" c="dimmed">Exchange keys are passivbot's <Code>api-keys.json</Code> entries; an instance's <Code>config.live.user</Code> names one.
        Until this section manages them, keep them in passivbot's api-keys.json on each host.</Text>
    </Paper>
  );
}

const SECTIONS: [string, ComponentType][] = [
  ['accounts', AccountsPlaceholder],
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
