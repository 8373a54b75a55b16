// Runs `kavka broker` as a real OS process (the built CLI in dist/) on OS-assigned ports and
// reads its bound addresses from the "node started" log line. Used by the benchmark and by the
// tests that kill, pause and restart real processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createWriteStream } from 'node:fs';

/** dist/cli/main.js, found from this file in src/harness or dist/harness. */
export const KAVKA_CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

/** Log lines kept per process (the newest), so long runs stay bounded in memory. */
const MAX_KEPT_LINES = 5_000;

export interface BrokerProcess {
  child: ChildProcess;
  clientAddress: string;
  adminAddress: string;
  /** The newest log lines (stdout and stderr), at most MAX_KEPT_LINES. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL if it has not exited within graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export interface BrokerProcessOptions {
  startTimeoutMs?: number;
  /** Appends every line the process writes (stdout and stderr) to this file. */
  logFile?: string;
}

export async function startBrokerProcess(dataDir: string, overrides: Record<string, string> = {}, options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const settings = {
    listeners: 'CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0',
    'admin.listener': '127.0.0.1:0',
    'log.dirs': dataDir,
    ...overrides,
  };
  const args = [KAVKA_CLI, 'broker', ...Object.entries(settings).flatMap(([k, v]) => ['--override', `${k}=${v}`])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const logStream = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // 'close' comes once stdout and stderr are drained, after the last line.
  child.on('close', () => logStream?.end());
  const started = new Promise<{ clientAddress: string; adminAddress: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start within ${startTimeoutMs} ms:\n${lines.join('\n')}`)), startTimeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${signal ?? code}) before it started:\n${lines.join('\n')}`));
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        logStream?.write(`${line}\n`);
        if (lines.length > MAX_KEPT_LINES) lines.splice(0, lines.length - MAX_KEPT_LINES);
        if (!line.includes('"node started"')) return;
        const entry = JSON.parse(line) as { listeners: { name: string; host: string; port: number }[]; admin: string };
        const client = entry.listeners.find((l) => l.name === 'CLIENT');
        if (client === undefined) return;
        clearTimeout(timer);
        resolve({ clientAddress: `${client.host}:${client.port}`, adminAddress: entry.admin });
      });
    }
  });
  const stop = async (graceMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    return { child, lines, exited, stop, ...(await started) };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
