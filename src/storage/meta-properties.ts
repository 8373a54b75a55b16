// `<log dir>/meta.properties`, as Kafka writes it: which cluster and node own the directory.
//
//   version=1
//   cluster.id=<cluster id>
//   node.id=<node id>
//
// Written on first start into a log dir that holds no partitions; checked on every later start.
// A mismatch stops start-up with INVALID_CONFIG naming the file and both values, so a node never
// serves another node's (or another cluster's) data.
import { join } from 'node:path';
import { KavkaError } from '../util/errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { formatProperties, parseProperties } from '../util/properties.js';
import { readFileIfExists, type StorageFs } from './storage-fs.js';

export const META_PROPERTIES_FILE = 'meta.properties';
const META_VERSION = '1';

export interface MetaProperties {
  clusterId: string;
  nodeId: number;
}

export function checkMetaPropertiesValues(meta: MetaProperties): void {
  if (meta.clusterId === '' || /[\s=:#!]/.test(meta.clusterId)) {
    throw new KavkaError('INVALID_CONFIG', `cluster.id ${JSON.stringify(meta.clusterId)} must be non-empty without spaces, '=', ':', '#' or '!'`);
  }
  if (!Number.isSafeInteger(meta.nodeId) || meta.nodeId < 0) throw new KavkaError('INVALID_CONFIG', `node.id ${meta.nodeId} must be a non-negative integer`);
}

/**
 * Checks `<logDir>/meta.properties` against the node's identity, writing it when missing.
 * `holdsPartitions`: the dir already has partition directories; then a missing file is an error
 * (a node adopts only an empty dir).
 */
export async function ensureMetaProperties(fs: StorageFs, logDir: string, expected: MetaProperties, holdsPartitions: boolean): Promise<void> {
  checkMetaPropertiesValues(expected);
  const path = join(logDir, META_PROPERTIES_FILE);
  const bytes = await readFileIfExists(fs, path);
  if (bytes === undefined) {
    if (holdsPartitions) {
      throw new KavkaError('INVALID_CONFIG', `${path} is missing but ${logDir} holds partition directories; refusing to adopt data of an unknown node and cluster`);
    }
    const text = formatProperties(
      [
        ['version', META_VERSION],
        ['cluster.id', expected.clusterId],
        ['node.id', String(expected.nodeId)],
      ],
      'Written by Kavka on first start. The node and cluster that own this log dir.',
    );
    await writeFileAtomic(fs, path, text, { syncDirectory: true });
    return;
  }
  const properties = parseProperties(bytes.toString('utf8'));
  if (properties === undefined) throw new KavkaError('INVALID_CONFIG', `${path} is not a properties file (key=value lines)`);
  const version = properties.get('version');
  if (version !== META_VERSION) throw new KavkaError('INVALID_CONFIG', `${path} has version ${JSON.stringify(version ?? null)}; this node reads version ${META_VERSION}`);
  const clusterId = properties.get('cluster.id');
  if (clusterId !== expected.clusterId) {
    throw new KavkaError('INVALID_CONFIG', `${path} has cluster.id=${clusterId ?? '(missing)'} but this node is configured with cluster.id=${expected.clusterId}`);
  }
  const nodeId = properties.get('node.id');
  if (nodeId !== String(expected.nodeId)) {
    throw new KavkaError('INVALID_CONFIG', `${path} has node.id=${nodeId ?? '(missing)'} but this node is configured with node.id=${expected.nodeId}`);
  }
}
