import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalController, METADATA_LOG_FILE } from '../../src/controller/index.js';
import { LocalMetadataLog } from '../../src/controller/local-metadata-log.js';
import { silentLogger } from '../../src/util/logger.js';

let dir: string;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function open(logDir: string): LocalController {
  let id = 0;
  return LocalController.open({
    logDir, nodeId: 1, defaultPartitions: 1, defaultReplicationFactor: 1, deleteTopicEnable: true,
    random: () => 0, newTopicId: () => `id-${++id}`, logger: silentLogger(),
  });
}

const ENDPOINTS = [{ name: 'CLIENT', host: '127.0.0.1', port: 9092 }];

describe('the single-node LocalController', () => {
  it('registers itself unfenced, so it counts as a live broker for topic creation (KIP-631 registrations start fenced)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-controller-'));
    const controller = open(dir);
    await controller.registerBroker(ENDPOINTS, undefined);
    expect(controller.image.unfencedBrokerIds()).toEqual([1]);
    const [result] = await controller.createTopics([{ name: 't', configs: {}, assignments: new Map() }], false);
    expect(result.errorCode).toBe('NONE');
    controller.close();
  });

  it('writes nothing on a restart with the same endpoints', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-controller-'));
    const first = open(dir);
    await first.registerBroker(ENDPOINTS, undefined);
    const offset = first.image.offset;
    first.close();
    const second = open(dir);
    await second.registerBroker(ENDPOINTS, undefined);
    expect(second.image.offset).toBe(offset);
    second.close();
  });

  it('unfences itself when its log holds a registration written before fencing existed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'kavka-controller-'));
    const { log } = LocalMetadataLog.open(join(dir, METADATA_LOG_FILE), silentLogger());
    log.append([{ type: 'RegisterBroker', nodeId: 1, endpoints: ENDPOINTS }]);
    log.close();
    const controller = open(dir);
    expect(controller.image.unfencedBrokerIds()).toEqual([]);
    await controller.registerBroker(ENDPOINTS, undefined);
    expect(controller.image.unfencedBrokerIds()).toEqual([1]);
    controller.close();
  });
});
