// The short chaos profile inside `npm test`: every scenario of `npm run chaos` (seconds each) on
// a fresh 3-process cluster on 127.0.0.1, with fixed seeds. Each must inject its faults and end
// with no violation; on failure the message carries the violations, the steps and the report dir
// (history.json, report.json and the node logs). Re-run one: `npm run chaos -- --seed <seed>
// --scenario <name>` (the seed printed below).
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { runChaos } from '../../src/chaos/main.js';
import { formatViolations } from '../../src/chaos/history.js';
import { SCENARIOS } from '../../src/chaos/scenarios.js';

const reportRoot = mkdtempSync(join(tmpdir(), 'kavka-chaos-test-'));
const BASE_SEED = 20261126;
/** A failed scenario's report stays for inspection (its message names the dir); else all go. */
let anyFailed = false;

afterAll(async () => {
  if (!anyFailed) await rm(reportRoot, { recursive: true, force: true });
});

describe('chaos, short profile, real processes', () => {
  SCENARIOS.filter((s) => s.longOnly !== true).forEach((scenario, i) => {
    const seed = BASE_SEED + i;
    it(`${scenario.name} (seed ${seed}): ${scenario.proves}`, async () => {
      onTestFailed(() => {
        anyFailed = true;
      });
      const lines: string[] = [];
      const [result] = await runChaos({ profile: 'short', target: 'process', seed, scenarios: [scenario], reportRoot, log: (line) => lines.push(line) });
      const context = `seed ${seed}, report in ${result.reportDir}\n${lines.join('\n')}`;
      expect(result.error, context).toBeUndefined();
      expect(result.skipped, context).toEqual([]);
      expect(result.faults, context).toBeGreaterThan(0);
      expect(result.ok, context).toBeGreaterThan(0);
      expect(formatViolations(result.violations), context).toBe('');
    }, 150_000);
  });
});
