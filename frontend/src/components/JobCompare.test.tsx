import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/react';
import { MantineProvider } from '@mantine/core';
import { MemoryRouter } from 'react-router-dom';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { CompareView, delta } from './JobCompare';
import { SERIES } from './ParetoCompare';
import type { Member } from '../lib/pareto';

const wrap = (ui: React.ReactNode) => render(
  <QueryClientProvider client={new QueryClient()}><MantineProvider><MemoryRouter>{ui}</MemoryRouter></MantineProvider></QueryClientProvider>,
);

// The shapes the api stores (read_optimize): v7 `analysis` flat, v8 `metrics.stats.X.mean`.
const v7 = (hash: string, adg: number, dd: number): Member => ({ hash, analysis: { adg, drawdown_worst: dd }, config_path: `pareto/${hash}.json` });
const v8 = (hash: string, adg: number, dd: number): Member => ({ hash, metrics: { stats: { adg: { mean: adg }, drawdown_worst: { mean: dd } } }, config_path: `pareto/${hash}.json` });
const optimize = (id: string, pareto: Member[] | null, status = 'succeeded') => ({ id, kind: 'optimize', status, result: pareto ? { summary: { results_dir: 'r', pareto }, artifacts: [] } : null });
const A = 'aaaaaaaa-1111', B = 'bbbbbbbb-2222';

describe('CompareView of two optimizations', { timeout: 20_000 }, () => {
  it('plots both fronts as two series told apart by shape, and lists both members side by side', () => {
    const { container } = wrap(<CompareView ids={[A, B]} chartWidth={600} jobs={[
      optimize(A, [v7('a1', 0.001, 0.2), v7('a2', 0.002, 0.3), v7('a3', 0.003, 0.5)]),
      optimize(B, [v8('b1', 0.0015, 0.1), v8('b2', 0.0025, 0.25)]),
    ]} />);
    const chart = screen.getByTestId('pareto-compare-chart');
    expect(chart.getAttribute('data-series')).toBe('2');
    expect(chart.getAttribute('data-points')).toBe('3,2');
    expect(screen.getByRole('img', { name: /Pareto fronts of aaaaaaaa and bbbbbbbb: drawdown_worst against adg/ })).toBeTruthy();
    // one marker shape per series, not colour alone; the legend names both jobs
    expect(container.querySelectorAll('.recharts-scatter')).toHaveLength(2);
    const [circles, triangles] = [...container.querySelectorAll('.recharts-scatter')].map((g) => [...g.querySelectorAll('path.recharts-symbols')]);
    expect(circles).toHaveLength(3);
    expect(triangles).toHaveLength(2);
    expect(circles[0].getAttribute('d')).toMatch(/A/);          // arcs: a circle
    expect(triangles[0].getAttribute('d')).toMatch(/^M[^A]*Z$/); // three straight edges
    expect(circles[0].getAttribute('fill')).not.toBe(triangles[0].getAttribute('fill'));
    const legend = container.querySelector('.recharts-legend-wrapper')!;
    expect(legend.textContent).toContain('aaaaaaaa (circles, 3)');
    expect(legend.textContent).toContain('bbbbbbbb (triangles, 2)');
    expect(new Set(SERIES.map((s) => s.shape)).size).toBe(2);
    const left = screen.getByTestId('pareto-members-0'), right = screen.getByTestId('pareto-members-1');
    expect(within(left).getAllByRole('row')).toHaveLength(4); // header + 3
    expect(within(right).getAllByRole('row')).toHaveLength(3);
    expect(within(right).getByRole('row', { name: /b1 0\.0015 0\.1000/ })).toBeTruthy();
    expect(within(left).getByRole('columnheader', { name: 'adg' })).toBeTruthy();
  });

  it('uses the dark theme\'s colours on a dark page, still one shape per job', () => {
    const { container } = render(<QueryClientProvider client={new QueryClient()}><MantineProvider forceColorScheme="dark"><MemoryRouter>
      <CompareView ids={[A, B]} chartWidth={600} jobs={[optimize(A, [v7('a1', 0.001, 0.2)]), optimize(B, [v7('b1', 0.002, 0.1)])]} />
    </MemoryRouter></MantineProvider></QueryClientProvider>);
    const fills = [...container.querySelectorAll('.recharts-scatter')].map((g) => g.querySelector('path.recharts-symbols')!.getAttribute('fill'));
    expect(fills).toEqual(SERIES.map((s) => s.dark));
  });

  it('switches both tables to the metric picked for an axis', () => {
    wrap(<CompareView ids={[A, B]} chartWidth={600} jobs={[
      optimize(A, [{ hash: 'a1', analysis: { adg: 0.001, drawdown_worst: 0.2, sharpe_ratio: 1.5 }, config_path: 'p/a1.json' }]),
      optimize(B, [{ hash: 'b1', analysis: { adg: 0.002, drawdown_worst: 0.1, sharpe_ratio: 2.5 }, config_path: 'p/b1.json' }]),
    ]} />);
    fireEvent.click(screen.getByLabelText('y', { selector: 'input' }));
    fireEvent.click(screen.getByRole('option', { name: 'sharpe_ratio' }));
    expect(within(screen.getByTestId('pareto-members-1')).getByRole('columnheader', { name: 'sharpe_ratio' })).toBeTruthy();
    expect(within(screen.getByTestId('pareto-members-1')).getByRole('row', { name: /b1 0\.0020 2\.5000/ })).toBeTruthy();
  });

  it('says what it waits for while an optimization has not finished', () => {
    wrap(<CompareView ids={[A, B]} jobs={[optimize(A, [v7('a1', 0.001, 0.2)]), optimize(B, null, 'running')]} />);
    expect(screen.queryByTestId('pareto-compare')).toBeNull();
    expect(screen.getByTestId('compare').textContent).toContain('once both optimizations have succeeded (aaaaaaaa: succeeded, bbbbbbbb: running)');
  });

  it('shows an empty front as such next to the other', () => {
    wrap(<CompareView ids={[A, B]} chartWidth={600} jobs={[optimize(A, [v7('a1', 0.001, 0.2)]), optimize(B, [])]} />);
    expect(screen.getByTestId('pareto-compare-chart').getAttribute('data-series')).toBe('1');
    expect(screen.getByText('This optimization found no Pareto member.')).toBeTruthy();
  });
});

describe('CompareView of a backtest and an optimization', () => {
  it('compares metrics and says how to compare fronts', () => {
    wrap(<CompareView ids={[A, B]} jobs={[
      { id: A, kind: 'backtest', status: 'succeeded', result: { summary: { adg: 0.001 }, artifacts: [] } },
      optimize(B, [v7('b1', 0.002, 0.1)]),
    ]} />);
    expect(screen.queryByTestId('pareto-compare')).toBeNull();
    expect(screen.getByTestId('compare').textContent).toContain('tick two optimizations to compare their Pareto fronts');
    expect(screen.getByRole('row', { name: /adg 0\.0010 —/ })).toBeTruthy();
  });

  it('delta is signed and relative', () => {
    expect(delta(2, 3)).toBe('+1 (+50%)');
    expect(delta(2, undefined)).toBe('—');
  });
});
