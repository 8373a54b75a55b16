// Runs `kavka broker` as a real OS process (the built CLI in dist/) on OS-assigned ports, and
// reads the bound addresses from its "node started" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

export interface BrokerProcess {
  child: ChildProcess;
  clientAddress: string;
  adminAddress: string;
  /** Every log line so far. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startBrokerProcess(dataDir: string, overrides: Record<string, string> = {}, startTimeoutMs = 30_000): Promise<BrokerProcess> {
  const settings = {
    listeners: 'CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0',
    'admin.listener': '127.0.0.1:0',
    'log.dirs': dataDir,
    ...overrides,
  };
  const args = [CLI, 'broker', ...Object.entries(settings).flatMap(([k, v]) => ['--override', `${k}=${v}`])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream! }).on('line', (line) => lines.push(line));
  const started = await new Promise<{ clientAddress: string; adminAddress: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start within ${startTimeoutMs} ms:\n${lines.join('\n')}`)), startTimeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${signal ?? code}) before it started:\n${lines.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('"node started"')) return;
      const entry = JSON.parse(line) as { listeners: { name: string; host: string; port: number }[]; admin: string };
      const client = entry.listeners.find((l) => l.name === 'CLIENT')!;
      clearTimeout(timer);
      resolve({ clientAddress: `${client.host}:${client.port}`, adminAddress: entry.admin });
    });
  });
  return { child, lines, exited, ...started };
}
