import { Alert } from '@mantine/core';
import { ApiError, problemOf } from '../lib/problem';

/** Shows what the api said went wrong (`title`, `detail`, and the field `key`), where the
 * user acted. Renders nothing without an error, nor for an expired session (the login dialog
 * over the page says so, and the user acts again after logging in). */
export function ProblemAlert({ error, onClose }: { error: unknown; onClose?: () => void }) {
  const p = problemOf(error);
  if (!p || (error instanceof ApiError && error.sessionExpired)) return null;
  return (
    <Alert color="red" title={p.title} role="alert" data-testid="problem" withCloseButton={!!onClose} onClose={onClose} my="sm">
      {p.detail}
      {p.key ? <> (field <code data-testid="problem-key">{p.key}</code>)</> : null}
    </Alert>
  );
}
