// Starts a real broker in this process on OS-assigned ports with its own temp log dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type Broker } from '../../src/broker/index.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';

export interface TestBroker {
  broker: Broker;
  clientAddress: string;
  adminAddress: string;
  dataDir: string;
  /** Stops the broker (idempotent) and keeps the data dir. */
  stop(): Promise<void>;
  /** Stops the broker and removes its data dir. */
  destroy(): Promise<void>;
}

export async function startTestBroker(overrides: Record<string, string> = {}, options: { dataDir?: string; logger?: Logger } = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'kavka-test-')));
  const broker = await startBroker({
    overrides: {
      listeners: 'CLIENT://127.0.0.1:0,INTERNAL://127.0.0.1:0',
      'admin.listener': '127.0.0.1:0',
      'log.dirs': dataDir,
      ...overrides,
    },
    logger: options.logger ?? silentLogger(),
  });
  const stop = () => broker.stop();
  return {
    broker,
    clientAddress: broker.clientAddress,
    adminAddress: broker.adminAddress,
    dataDir,
    stop,
    destroy: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
