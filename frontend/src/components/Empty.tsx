import { Paper, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';

/** An empty state that says what to do next. */
export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <Paper withBorder p="xl" ta="center" data-testid="empty">
      <Title order={4}>{title}</Title>
      <Text c="dimmed" mt="xs">{children}</Text>
    </Paper>
  );
}
