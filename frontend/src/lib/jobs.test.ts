import { describe, expect, it } from 'vitest';
import { equityArtifact, parseSeries } from './jobs';

describe('equityArtifact', () => {
  it('prefers the series in the summary results dir (combined first), else the first one', () => {
    const files = ['backtests/binance/2026-01-01T00_00_00/balance_and_equity.csv.gz', 'backtests/combined/2026-01-01T00_00_00/balance_and_equity.csv.gz', 'backtests/combined/2026-01-01T00_00_00/analysis.json'];
    expect(equityArtifact(files, 'backtests/combined/2026-01-01T00_00_00')).toBe(files[1]);
    expect(equityArtifact(files)).toBe(files[0]);
    expect(equityArtifact(['pareto/abc.json'])).toBeNull();
  });
});

describe('parseSeries', () => {
  // pandas' to_csv of passivbot's balance/equity frame: unnamed index, then the columns
  const csv = ',balance,equity\n' + Array.from({ length: 200 }, (_, i) => `${i},${1000 + i},${1001 + i}`).join('\n') + '\n';

  it('reads the index as x and every numeric column as a series', () => {
    const s = parseSeries(csv, 5000);
    expect(s).toMatchObject({ x: 'minute', columns: ['balance', 'equity'], total: 200 });
    expect(s.rows).toHaveLength(200);
    expect(s.rows[3]).toEqual({ minute: 3, balance: 1003, equity: 1004 });
  });

  it('thins a long series evenly, keeping the first and the last row', () => {
    const s = parseSeries(csv, 10);
    expect(s.rows).toHaveLength(10);
    expect(s.rows[0].minute).toBe(0);
    expect(s.rows.at(-1)!.minute).toBe(199);
    const xs = s.rows.map((r) => r.minute);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
  });

  it('leaves out columns with no number', () => {
    const s = parseSeries('t,balance,note\n0,5,a\n1,6,b\n');
    expect(s.x).toBe('t');
    expect(s.columns).toEqual(['balance']);
  });
});
