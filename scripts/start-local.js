#!/usr/bin/env node
// `npm start`: runs a local Kavka cluster on 127.0.0.1 with embedded defaults and data under
// ./data/node-N, prefixes each node's log lines with [node-N], prints "ready" once every node's
// /readyz passes, and on Ctrl-C (or SIGTERM) stops the nodes one at a time, each within a bound.
// A node that dies (kill -9 in a fault test) leaves the others running; the script prints the
// command that starts it again.
//
// Node N listens on CLIENT 9091+N, INTERNAL 9191+N (Raft, controller and inter-broker traffic),
// admin HTTP 9643+N. All three nodes are controller voters (process.roles=broker,controller).
// New topics get 3 replicas and acks=all needs 2 of them in sync (min.insync.replicas=2): any
// one node may fail without losing an acknowledged write or refusing one.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const NODE_COUNT = 3;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');

const VOTERS = Array.from({ length: NODE_COUNT }, (_, i) => `${i + 1}@127.0.0.1:${9192 + i}`).join(',');

function nodeArgs(n) {
  const overrides = {
    'node.id': String(n),
    listeners: `CLIENT://127.0.0.1:${9091 + n},INTERNAL://127.0.0.1:${9191 + n}`,
    'admin.listener': `127.0.0.1:${9643 + n}`,
    'log.dirs': join('data', `node-${n}`),
    'controller.quorum.voters': VOTERS,
    'default.replication.factor': '3',
    'min.insync.replicas': '2',
  };
  return ['broker', '--exit-with-parent', ...Object.entries(overrides).flatMap(([k, v]) => ['--override', `${k}=${v}`])];
}

const nodes = [];
for (let n = 1; n <= NODE_COUNT; n++) {
  // Each node runs in its own process group, so a terminal's Ctrl-C reaches only this script,
  // which then stops the nodes one at a time. --exit-with-parent makes a node shut down cleanly
  // if this script dies without stopping it (its stdin pipe closes).
  const child = spawn(process.execPath, [cli, ...nodeArgs(n)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const prefix = `[node-${n}] `;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  }
  const node = { n, child, exited: false, adminUrl: `http://127.0.0.1:${9643 + n}/readyz` };
  child.on('exit', (code, signal) => {
    node.exited = true;
    process.stdout.write(`${prefix}exited (${signal ?? `code ${code}`})\n`);
    if (stopping) return;
    if (nodes.every((other) => other.exited)) {
      process.stderr.write('every node has exited; stopping\n');
      void stopAll(1);
      return;
    }
    // A cluster outlives one node: the others keep serving (fault testing kills nodes on purpose).
    const why = code === 3 ? ' because its metadata log failed (a disk error: see its last log lines; fix the disk first)' : '';
    process.stderr.write(`node ${n} exited${why}; the others keep running. Start it again (same data, same ports) with:\n  node ${join('dist', 'cli', 'main.js')} ${nodeArgs(n).filter((a) => a !== '--exit-with-parent').map((a) => (a.includes(',') || a.includes(' ') ? `'${a}'` : a)).join(' ')}\n`);
  });
  nodes.push(node);
}

async function waitReady() {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !stopping) {
    const states = await Promise.all(nodes.map((node) => fetch(node.adminUrl).then((r) => r.ok, () => false)));
    if (states.every(Boolean)) {
      process.stdout.write(`ready: ${nodes.map((node) => `node ${node.n} at 127.0.0.1:${9091 + node.n}`).join(', ')}\n`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (!stopping) {
    process.stderr.write(`the cluster did not become ready within ${READY_TIMEOUT_MS} ms; see the node logs above\n`);
    await stopAll(1);
  }
}

let stopping = false;
async function stopAll(exitCode) {
  if (stopping) return;
  stopping = true;
  for (const node of [...nodes].reverse()) {
    if (node.exited) continue;
    node.child.kill('SIGTERM');
    const stopped = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS);
      node.child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!stopped) {
      process.stderr.write(`node ${node.n} did not stop within ${STOP_TIMEOUT_MS} ms; killing it\n`);
      node.child.kill('SIGKILL');
    }
  }
  process.exit(exitCode);
}

process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
void waitReady();
