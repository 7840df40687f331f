import { describe, expect, it } from 'vitest';
import { render, screen } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import { ProblemAlert } from './ProblemAlert';
import { ApiError, problemAt, toProblem } from '../lib/problem';

const wrap = (ui: React.ReactNode) => render(<MantineProvider>{ui}</MantineProvider>);

describe('ProblemAlert', () => {
  it("shows the api's title, detail and the field key of a problem details answer", () => {
    const problem = toProblem(422, { type: 'about:blank', title: 'Invalid config', status: 422,
      detail: 'config.live.user "binance_01" has no entry in api-keys', key: 'live.user' });
    wrap(<ProblemAlert error={new ApiError(problem)} />);
    expect(screen.getByRole('alert').textContent).toContain('Invalid config');
    expect(screen.getByRole('alert').textContent).toContain('has no entry in api-keys');
    expect(screen.getByTestId('problem-key').textContent).toBe('live.user');
  });

  it('explains a network failure and renders nothing without an error', () => {
    const { container } = wrap(<ProblemAlert error={null} />);
    expect(container.querySelector('[role=alert]')).toBeNull();
    wrap(<ProblemAlert error={new ApiError(toProblem(0, ''))} />);
    expect(screen.getByRole('alert').textContent).toContain('is botfleet running?');
  });

  it("leaves an expired session to the login dialog but shows the login's own 401", () => {
    const expired = toProblem(401, { title: 'Unauthorized', status: 401, detail: 'session expired' });
    const { container } = wrap(<ProblemAlert error={new ApiError(expired, { sessionExpired: true })} />);
    expect(container.querySelector('[role=alert]')).toBeNull();
    const wrong = toProblem(401, { title: 'Unauthorized', status: 401, detail: 'wrong user name or password' });
    wrap(<ProblemAlert error={new ApiError(wrong)} />);
    expect(screen.getByRole('alert').textContent).toContain('wrong user name or password');
  });

  it('points a problem at its field and the fields inside it', () => {
    const p = toProblem(422, { title: 'Invalid', status: 422, detail: 'bad', key: 'live.user' });
    expect(problemAt(p, 'live')).toBe('bad');
    expect(problemAt(p, 'live.user')).toBe('bad');
    expect(problemAt(p, 'name')).toBeUndefined();
  });
});
