// `npm run chaos`: runs the chaos scenarios against real processes on 127.0.0.1 (or the
// docker-compose cluster with --target compose), prints a progress line per step and a final
// table, writes each scenario's history and report under the report dir, and exits non-zero on
// any violation.
//
//   npm run chaos                          short profile, every scenario, a fresh seed
//   npm run chaos -- --profile long        longer schedules and workloads, plus 'mixed'
//   npm run chaos -- --seed 42 --scenario leader-kill,pause
//   npm run chaos -- --check data/chaos/<run>/leader-kill/history.json
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkHistory, formatViolations, historyFromJson } from './history.js';
import { runScenario, type ScenarioResult } from './runner.js';
import { SCENARIOS, type Profile, type Scenario } from './scenarios.js';
import { startProcessTarget } from './process-target.js';
import type { ChaosTarget } from './target.js';
import { ComposeTarget } from './compose-target.js';

export interface ChaosOptions {
  profile: Profile;
  target: 'process' | 'compose';
  seed: number;
  scenarios: readonly Scenario[];
  reportRoot: string;
  log: (line: string) => void;
}

/** Runs the scenarios one after another, each on a fresh cluster (process target). */
export async function runChaos(options: ChaosOptions): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const [i, scenario] of options.scenarios.entries()) {
    const seed = options.seed + i;
    const reportDir = join(options.reportRoot, scenario.name);
    let target: ChaosTarget | undefined;
    let scratch: string | undefined;
    try {
      if (options.target === 'compose') {
        const compose = new ComposeTarget();
        await compose.up();
        target = compose;
      } else {
        scratch = await mkdtemp(join(tmpdir(), `kavka-chaos-${scenario.name}-`));
        target = await startProcessTarget({ dataRoot: scratch, logDir: reportDir, smallDisks: scenario.smallDisks?.includes(options.profile) === true, log: options.log });
      }
      const result = await runScenario({ scenario, profile: options.profile, seed, target, reportDir, log: options.log });
      results.push(result);
      options.log(progressLine(result));
    } catch (error) {
      const failed: ScenarioResult = { scenario: scenario.name, seed, target: options.target, faults: 0, skipped: [], ok: 0, failed: 0, unknown: 0, consumed: 0, violations: [], recoverMs: -1, elapsedMs: 0, reportDir, error: (error as Error).message };
      results.push(failed);
      options.log(progressLine(failed));
    } finally {
      await target?.destroy().catch(() => undefined);
      // Keep a failing scenario's data dirs for inspection; drop a clean one's.
      const last = results[results.length - 1];
      if (scratch !== undefined && last.violations.length === 0 && last.error === undefined) await rm(scratch, { recursive: true, force: true });
      else if (scratch !== undefined) options.log(`  ${scenario.name}: data dirs kept in ${scratch}`);
    }
  }
  return results;
}

function progressLine(r: ScenarioResult): string {
  const verdict = r.error !== undefined ? `ERROR ${r.error}` : r.violations.length === 0 ? 'ok' : `${r.violations.length} VIOLATION(S)`;
  return `[${r.scenario}] seed ${r.seed}: ${verdict} — ${r.faults} faults, ops ${r.ok}/${r.failed}/${r.unknown} ok/failed/unknown, ${r.consumed} consumed, recovered in ${r.recoverMs} ms, ${(r.elapsedMs / 1000).toFixed(1)} s`;
}

/** The final table: one row per scenario. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const header = ['scenario', 'seed', 'faults', 'ops ok', 'failed', 'unknown', 'consumed', 'violations', 'recover ms', 'time s'];
  const rows = results.map((r) => [r.scenario, String(r.seed), String(r.faults), String(r.ok), String(r.failed), String(r.unknown), String(r.consumed), r.error === undefined ? String(r.violations.length) : 'ERROR', String(r.recoverMs), (r.elapsedMs / 1000).toFixed(1)]);
  const totals = ['total', '', ...[2, 3, 4, 5, 6].map((c) => String(rows.reduce((n, row) => n + Number(row[c]), 0))), String(results.reduce((n, r) => n + r.violations.length + (r.error === undefined ? 0 : 1), 0)), '', (results.reduce((n, r) => n + r.elapsedMs, 0) / 1000).toFixed(1)];
  const all = [header, ...rows, totals];
  const widths = header.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), widths.map((w) => '-'.repeat(w)).join('  '), line(totals)].join('\n');
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run chaos -- [--profile short|long] [--target process|compose] [--seed N] [--scenario a,b] [--report DIR] [--check history.json]\nscenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'short' },
      target: { type: 'string', default: 'process' },
      seed: { type: 'string' },
      scenario: { type: 'string' },
      report: { type: 'string' },
      check: { type: 'string' },
    },
  });
  if (values.check !== undefined) {
    const history = historyFromJson(JSON.parse(await readFile(values.check, 'utf8')) as Parameters<typeof historyFromJson>[0]);
    const violations = checkHistory(history);
    process.stdout.write(violations.length === 0 ? `${values.check}: no violations (${history.ops.length} operations)\n` : `${values.check}: ${violations.length} violation(s)\n${formatViolations(violations, 100)}\n`);
    process.exit(violations.length === 0 ? 0 : 1);
  }
  const profile = values.profile;
  if (profile !== 'short' && profile !== 'long') usage(`--profile must be short or long, not ${profile}`);
  const target = values.target;
  if (target !== 'process' && target !== 'compose') usage(`--target must be process or compose, not ${target}`);
  const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) usage(`--seed must be a non-negative integer, not ${values.seed}`);
  const names = values.scenario?.split(',').filter((n) => n.length > 0);
  for (const name of names ?? []) if (!SCENARIOS.some((s) => s.name === name)) usage(`unknown scenario ${name}`);
  const scenarios = SCENARIOS.filter((s) => (names === undefined ? profile === 'long' || s.longOnly !== true : names.includes(s.name)));
  const reportRoot = resolve(values.report ?? join('data', 'chaos', new Date().toISOString().replace(/[:.]/g, '-')));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`kavka chaos: profile ${profile}, target ${target}, seed ${seed} (re-run: npm run chaos -- --profile ${profile} --target ${target} --seed ${seed}${names === undefined ? '' : ` --scenario ${names.join(',')}`}), reports in ${reportRoot}`);
  // Some waits (fetch, AbortSignal.timeout) hold no reference that keeps Node running.
  const keepAlive = setInterval(() => undefined, 1_000);
  const results = await runChaos({ profile, target, seed, scenarios, reportRoot, log });
  clearInterval(keepAlive);
  const table = formatTable(results);
  log(`\n${table}`);
  await writeFile(join(reportRoot, 'summary.json'), JSON.stringify({ profile, target, seed, results: results.map((r) => ({ ...r, violations: r.violations.map((v) => ({ ...v, offset: v.offset?.toString() })) })) }, null, 2));
  const bad = results.filter((r) => r.violations.length > 0 || r.error !== undefined);
  log(bad.length === 0 ? `\nno violations (${results.length} scenarios); reports in ${reportRoot}` : `\n${bad.length} scenario(s) failed: ${bad.map((r) => r.scenario).join(', ')}; see ${reportRoot}/<scenario>/report.json`);
  process.exit(bad.length === 0 ? 0 : 1);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((error: unknown) => {
    process.stderr.write(`kavka chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
