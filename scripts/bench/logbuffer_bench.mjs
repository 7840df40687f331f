#!/usr/bin/env node
/**
 * Micro benchmark of the log viewer's storage (frontend/src/lib/logBuffer.ts) on the page's
 * main thread at 10,000 lines/s: N updates of 500 lines (one 50 ms `?batch=true` event each)
 * into a full 100,000-line ring, without and with a level filter. Runs in plain node (no
 * vitest, no browser); the TypeScript file is transpiled with the frontend's `typescript`.
 *
 *   node scripts/bench/logbuffer_bench.mjs [LOGBUFFER_TS] [--updates N]
 *
 * LOGBUFFER_TS defaults to the working tree's file; to compare with another version:
 *   git show main:frontend/src/lib/logBuffer.ts > /tmp/logBuffer.main.ts
 *   node scripts/bench/logbuffer_bench.mjs /tmp/logBuffer.main.ts
 * Both storage shapes are handled: the old one (`LogView.update(query, entries)`, one object
 * per line) and the in-place one (`LogView.sync()`, columns).
 *
 * Per case it prints the CPU time (process.cpuUsage, user + system, not wall) and garbage
 * collection (count, pause ms, and bytes allocated estimated from v8.GCProfiler's heap sizes
 * before/after each collection) of: `store` = ring push + view update + reading a 50-line
 * window (what each frame does), `message` = the same plus structuredClone of the worker's
 * message (serialize + deserialize, both on this thread: an upper bound of what the page pays
 * for postMessage). Figures vary with load: run before/after back to back.
 */
import { cpuUsage } from 'node:process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const here = dirname(fileURLToPath(import.meta.url));
const frontend = resolve(here, '../../frontend');
const args = process.argv.slice(2);
const updatesAt = args.indexOf('--updates');
const UPDATES = updatesAt >= 0 ? Number(args.splice(updatesAt, 2)[1]) : 600;
const source = resolve(args[0] ?? join(frontend, 'src/lib/logBuffer.ts'));
const CAPACITY = 100_000;
const BATCH = 500;
const WINDOW = 50;

const ts = createRequire(join(frontend, 'package.json'))('typescript');
const js = ts.transpileModule(readFileSync(source, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
const out = join(mkdtempSync(join(tmpdir(), 'logbench-')), 'logBuffer.mjs');
writeFileSync(out, js);
const lib = await import(pathToFileURL(out).href);
const inPlace = typeof lib.LogView.prototype.sync === 'function';

const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
let seq = 0;
/** One worker message of BATCH lines, in the shape this version's worker posts. */
function message() {
  const pairs = [];
  for (let i = 0; i < BATCH; i++, seq++) {
    const level = LEVELS[seq % 50 === 0 ? 3 : 1];
    pairs.push([`${1_790_000_000_000 + seq}-0`, `2026-11-27T04:00:00.${String(seq % 1e6).padStart(6, '0')}Z 2026-11-27T04:00:00Z ${level.padEnd(8)} [candle] BTC/USDT:USDT 1m close=97${seq % 1000}.5 vol=${seq} n=${seq}`]);
  }
  if (inPlace) return { type: 'lines', batch: lib.toBatch(pairs) };
  return { type: 'lines', lines: pairs.map(([id, line]) => ({ id, line, level: lib.levelOf(line) })) };
}

function setup(query) {
  const ring = new lib.LogRing(CAPACITY);
  const view = new lib.LogView(ring);
  for (let k = 0; k < CAPACITY / BATCH; k++) apply(ring, view, query, message());
  return { ring, view };
}

/** What the page does with one message: store it, update the view, read the window. */
function apply(ring, view, query, msg) {
  if (inPlace) {
    ring.push(msg.batch);
    view.setQuery(query); // the same query: only takes in the new lines
    let acc = 0;
    for (let i = Math.max(0, view.length - WINDOW); i < view.length; i++) acc += view.at(i).line.length;
    return acc;
  }
  ring.push(msg.lines);
  const lines = view.update(query, msg.lines);
  let acc = 0;
  for (let i = Math.max(0, lines.length - WINDOW); i < lines.length; i++) acc += lines[i].line.length;
  return acc;
}

function measure(name, query, clone) {
  const { ring, view } = setup(query);
  const messages = [];
  for (let k = 0; k < UPDATES; k++) messages.push(message()); // the worker's work: not measured
  globalThis.gc?.();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const heap0 = v8.getHeapStatistics().used_heap_size;
  const cpu0 = cpuUsage();
  let acc = 0;
  for (const m of messages) acc += apply(ring, view, query, clone ? structuredClone(m) : m);
  const cpu = cpuUsage(cpu0);
  const heap1 = v8.getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let allocated = 0;
  let last = heap0;
  let pause = 0;
  for (const s of statistics) {
    allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - last);
    last = s.afterGC.heapStatistics.usedHeapSize;
    pause += s.cost / 1000; // µs -> ms
  }
  allocated += Math.max(0, heap1 - last);
  const ms = (cpu.user + cpu.system) / 1000;
  console.log(`${name.padEnd(22)} cpu ${ms.toFixed(0).padStart(6)} ms (${(ms / UPDATES).toFixed(3)} ms/update)  gc ${String(statistics.length).padStart(4)} x, ${pause.toFixed(0).padStart(5)} ms  allocated ~${(allocated / 2 ** 20).toFixed(1).padStart(7)} MiB  [${acc % 7}]`);
}

console.log(`${source} (${inPlace ? 'in place, columns' : 'copying, objects'}): ${UPDATES} updates x ${BATCH} lines into a full ${CAPACITY}-line ring, node ${process.version}`);
const error = { levels: new Set(['ERROR']) };
measure('store, no filter', {}, false);
measure('store, ERROR filter', error, false);
measure('message, no filter', {}, true);
measure('message, ERROR filter', error, true);
