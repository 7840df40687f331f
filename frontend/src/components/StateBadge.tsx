import { Badge } from '@mantine/core';
import { JOB_STATUS_COLOR, STATE_COLOR } from '../lib/states';

export function StateBadge({ state }: { state: string }) {
  return <Badge color={STATE_COLOR[state] ?? 'gray'} variant="light" data-testid="state">{state}</Badge>;
}
export function JobStatusBadge({ status }: { status: string }) {
  return <Badge color={JOB_STATUS_COLOR[status] ?? 'gray'} variant="light" data-testid="job-status">{status}</Badge>;
}
