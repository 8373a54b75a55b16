// Runs the Raft simulation (test/raft/simulation.ts) over many seeds.
//   npm run sim -- --seeds N [--start S] [--nodes 3|5] [--trace] [--fault-ticks T] [--wipes] [--unsafe-wipes]
// --wipes: crashed nodes may lose their whole store and rejoin (Kavka issue 6); --unsafe-wipes:
// they come back as plain empty stores, which the checkers must catch.
// A failure prints the checker, seed=N and the command that replays it (with --trace, the event
// log of that seed). Exit status 1 if any seed fails.

import { runSimulation, SimulationFailure } from '../test/raft/simulation.js';

function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) args.set(arg.slice(2), 'true');
    else {
      args.set(arg.slice(2), next);
      i++;
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const seeds = Number(args.get('seeds') ?? 100);
const start = Number(args.get('start') ?? 1);
const nodes = Number(args.get('nodes') ?? 3);
const trace = args.get('trace') === 'true';
const faultTicks = args.has('fault-ticks') ? Number(args.get('fault-ticks')) : undefined;
const unsafeWipes = args.get('unsafe-wipes') === 'true';
const wipes = args.get('wipes') === 'true' || unsafeWipes;
for (const [name, value] of [['seeds', seeds], ['start', start], ['nodes', nodes]] as const) {
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer`);
}

const began = performance.now();
let failures = 0;
let committed = 0;
let elections = 0;
let crashes = 0;
let wiped = 0;
let rejoined = 0;
let unavailable = 0;
for (let seed = start; seed < start + seeds; seed++) {
  try {
    const result = runSimulation({ seed, nodes, trace, faultTicks, wipes, unsafeWipes });
    committed += result.committed;
    wiped += result.wipes;
    rejoined += result.rejoined;
    if (result.unavailableAfterWipe) unavailable++;
    elections += result.elections;
    crashes += result.crashes;
    if (trace) console.log(result.trace.join('\n'));
  } catch (err) {
    failures++;
    if (err instanceof SimulationFailure) {
      if (trace) console.log(err.trace.join('\n'));
      console.error(`FAIL ${err.message}\n`);
    } else {
      console.error(`FAIL seed=${seed} nodes=${nodes}: ${(err as Error).stack ?? String(err)}\n`);
    }
  }
}
const seconds = ((performance.now() - began) / 1000).toFixed(1);
console.log(
  `${seeds - failures}/${seeds} seeds passed (start ${start}, ${nodes} voters) in ${seconds}s: ` +
    `${committed} entries committed, ${elections} leaders elected, ${crashes} crashes` +
    (wipes ? `, ${wiped} stores wiped, ${rejoined} rejoined as voters, ${unavailable} seeds rightly left without a leader (after a wipe no candidate could win an election)` : ''),
);
process.exitCode = failures > 0 ? 1 : 0;
