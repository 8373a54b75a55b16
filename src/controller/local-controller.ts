// The controller of a single-node cluster: validates admin requests against the current image
// (topic-operations.ts), commits the resulting records to the local metadata log, replays them
// into a new image and tells listeners. Requests are handled one at a time, so a validation and
// its commit see the same image. Safe to call from many async handlers at once.
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { MetadataImage } from './metadata-image.js';
import type { MetadataRecord } from './metadata-records.js';
import { LocalMetadataLog } from './local-metadata-log.js';
import {
  alterTopicConfigs,
  createPartitions,
  createTopics,
  deleteTopics,
  type AlterTopicConfigRequest,
  type ControllerResult,
  type CreatedTopicResult,
  type CreatePartitionsRequest,
  type CreateTopicRequest,
  type PlacementContext,
  type TopicResult,
  placementBrokers,
} from './topic-operations.js';

export const METADATA_LOG_FILE = 'kavka-metadata.log';

export interface LocalControllerOptions {
  logDir: string;
  nodeId: number;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  deleteTopicEnable: boolean;
  random: () => number;
  /** A new unique topic id (a UUID in production). */
  newTopicId: () => string;
  logger: Logger;
}

export class LocalController {
  private imageValue: MetadataImage;
  private readonly listeners = new Set<(image: MetadataImage) => void>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: LocalControllerOptions,
    private readonly log: LocalMetadataLog,
    image: MetadataImage,
  ) {
    this.imageValue = image;
  }

  static open(options: LocalControllerOptions): LocalController {
    const { log, records } = LocalMetadataLog.open(join(options.logDir, METADATA_LOG_FILE), options.logger);
    const image = records.reduce((img, record) => img.replay(record), MetadataImage.EMPTY);
    return new LocalController(options, log, image);
  }

  get image(): MetadataImage {
    return this.imageValue;
  }

  /** The node id of the active controller (this node). */
  get controllerId(): number {
    return this.options.nodeId;
  }

  onImage(listener: (image: MetadataImage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  createTopics(requests: CreateTopicRequest[], validateOnly: boolean): Promise<CreatedTopicResult[]> {
    return this.run((image) => createTopics(requests, image, this.placementContext()), validateOnly);
  }

  deleteTopics(names: string[]): Promise<TopicResult[]> {
    return this.run((image) => deleteTopics(names, image, this.options.deleteTopicEnable), false);
  }

  createPartitions(requests: CreatePartitionsRequest[], validateOnly: boolean): Promise<TopicResult[]> {
    return this.run((image) => createPartitions(requests, image, this.placementContext()), validateOnly);
  }

  alterTopicConfigs(requests: AlterTopicConfigRequest[], validateOnly: boolean): Promise<TopicResult[]> {
    return this.run((image) => alterTopicConfigs(requests, image), validateOnly);
  }

  close(): void {
    this.log.close();
  }

  private placementContext(): PlacementContext {
    const { liveBrokers, brokerRacks } = placementBrokers(this.imageValue);
    return {
      defaultPartitions: this.options.defaultPartitions,
      defaultReplicationFactor: this.options.defaultReplicationFactor,
      liveBrokers,
      brokerRacks,
      startIndex: Math.floor(this.options.random() * Math.max(1, liveBrokers.length)),
      newTopicId: this.options.newTopicId,
    };
  }

  /**
   * Records this node's endpoints (once its listeners are bound), if they changed, and leaves it
   * unfenced. A registration starts fenced (KIP-631); a single node is its own controller and
   * heartbeats trivially, so the UnfenceBroker record commits in the same change. A log written
   * before fencing existed (or a fenced registration) gets the UnfenceBroker alone.
   */
  registerBroker(endpoints: { name: string; host: string; port: number }[], rack: string | undefined): Promise<void> {
    return this.run(() => {
      const nodeId = this.options.nodeId;
      const existing = this.imageValue.brokers.get(nodeId);
      const current = existing === undefined ? undefined : JSON.stringify([...existing.endpoints].map(([name, e]) => ({ name, host: e.host, port: e.port })));
      const records: MetadataRecord[] = [];
      if (current !== JSON.stringify(endpoints) || existing?.rack !== rack) {
        records.push({ type: 'RegisterBroker', nodeId, endpoints, rack }, { type: 'UnfenceBroker', nodeId });
      } else if (existing?.fenced === true) {
        records.push({ type: 'UnfenceBroker', nodeId });
      }
      return { records, results: [] };
    }, false).then(() => undefined);
  }

  private run<R>(decide: (image: MetadataImage) => ControllerResult<R>, validateOnly: boolean): Promise<R[]> {
    const next = this.queue.then(() => {
      const { records, results } = decide(this.imageValue);
      if (!validateOnly) this.commit(records);
      return results;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private commit(records: MetadataRecord[]): void {
    if (records.length === 0) return;
    this.log.append(records);
    this.imageValue = records.reduce((img, record) => img.replay(record), this.imageValue);
    this.options.logger.info({ records: records.map((r) => r.type), metadataOffset: this.imageValue.offset }, 'metadata committed');
    for (const listener of this.listeners) listener(this.imageValue);
  }
}
