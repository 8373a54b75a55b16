// One ProcessCluster per test, in a data root of its own: destroyed, and its data removed,
// after each test of the file that calls processClusters().
import { afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessCluster, type ClusterProcessOptions } from '../../src/harness/cluster-process.js';

export interface ProcessClusters {
  /** Starts a cluster under a fresh `<tmp>/<prefix>XXXXXX` data root (with `logs`, node logs go there too). */
  start(options: Omit<ClusterProcessOptions, 'dataRoot'> & { logs?: boolean }): Promise<ProcessCluster>;
  /** The current test's data root (after start). */
  readonly dataRoot: string;
}

export function processClusters(prefix: string): ProcessClusters {
  let cluster: ProcessCluster | undefined;
  let dataRoot: string | undefined;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = undefined;
    if (dataRoot !== undefined) await rm(dataRoot, { recursive: true, force: true });
    dataRoot = undefined;
  });
  return {
    async start({ logs, ...options }) {
      dataRoot = await mkdtemp(join(tmpdir(), prefix));
      cluster = await ProcessCluster.start({ ...options, dataRoot, ...(logs === true ? { logDir: dataRoot } : {}) });
      return cluster;
    },
    get dataRoot() {
      if (dataRoot === undefined) throw new Error('no cluster started in this test');
      return dataRoot;
    },
  };
}
