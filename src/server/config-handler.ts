// DescribeConfigs adapter (AlterConfigs changes metadata: admin-handler.ts). Topic configs are topic overrides over broker
// defaults; broker configs are static (from file, environment and flags) in this version.
import { KavkaError, toKavkaError, type ErrorName } from '../util/errors.js';
import { TOPIC_CONFIG_KEYS, type TopicConfigKey } from '../controller/index.js';
import { BROKER_CONFIG_KEYS, type BrokerConfigKey } from '../config/index.js';
import type { DescribeConfigsRequest__Output } from '../gen/kavka/v1/DescribeConfigsRequest.js';
import type { DescribeConfigsResponse } from '../gen/kavka/v1/DescribeConfigsResponse.js';
import type { DescribeConfigsResult } from '../gen/kavka/v1/DescribeConfigsResult.js';
import type { ConfigEntry } from '../gen/kavka/v1/ConfigEntry.js';
import type { ServerContext } from './context.js';

export class ConfigHandler {
  constructor(private readonly context: ServerContext) {}

  async describe(request: DescribeConfigsRequest__Output): Promise<DescribeConfigsResponse> {
    return { results: request.resources.map((r) => this.describeOne(r.type, r.name, r.keys)) };
  }

  private describeOne(type: string, name: string, keys: string[]): DescribeConfigsResult {
    try {
      const entries = type === 'TOPIC' ? this.topicEntries(name) : type === 'BROKER' ? this.brokerEntries(name) : undefined;
      if (entries === undefined) throw new KavkaError('INVALID_REQUEST', `resource type ${type} is not supported; use TOPIC or BROKER`);
      const wanted = keys.length === 0 ? entries : entries.filter((e) => keys.includes(e.name ?? ''));
      return { type, name, errorCode: 'NONE', errorMessage: '', entries: wanted } as DescribeConfigsResult;
    } catch (error) {
      const e = toKavkaError(error);
      return { type, name, errorCode: e.code as ErrorName, errorMessage: e.message, entries: [] } as DescribeConfigsResult;
    }
  }

  private topicEntries(name: string): ConfigEntry[] {
    const topic = this.context.controller.image.topic(name);
    if (topic === undefined) throw new KavkaError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} does not exist`);
    const defaults = topicDefaults(this.context);
    return (Object.keys(TOPIC_CONFIG_KEYS) as TopicConfigKey[]).map((key) => {
      const override = topic.configs.get(key);
      return {
        name: key,
        value: override ?? defaults[key],
        readOnly: false,
        isDefault: override === undefined,
        source: override === undefined ? 'STATIC_BROKER_CONFIG' : 'TOPIC_CONFIG',
        isSensitive: false,
      };
    });
  }

  private brokerEntries(name: string): ConfigEntry[] {
    const { config } = this.context;
    if (name !== String(config.nodeId)) throw new KavkaError('INVALID_REQUEST', `this is node ${config.nodeId}; ask it for broker ${config.nodeId}'s configs or ask node ${name} directly`);
    return (Object.keys(BROKER_CONFIG_KEYS) as BrokerConfigKey[]).map((key) => ({
      name: key,
      value: String(config.values.get(key)),
      readOnly: true,
      isDefault: config.sources.get(key) === 'default',
      source: config.sources.get(key) === 'default' ? 'DEFAULT_CONFIG' : 'STATIC_BROKER_CONFIG',
      isSensitive: false,
    }));
  }
}

/** The broker-level default each topic key falls back to, as text. */
export function topicDefaults(context: Pick<ServerContext, 'config'>): Record<TopicConfigKey, string> {
  const { config } = context;
  return {
    'retention.ms': String(config.retentionMs),
    'retention.bytes': String(config.get('log.retention.bytes')),
    'retention.messages': String(config.get('log.retention.messages')),
    'segment.bytes': String(config.get('log.segment.bytes')),
    'segment.ms': String(config.rollMs),
    'max.message.bytes': String(config.get('message.max.bytes')),
    'message.timestamp.type': config.get('log.message.timestamp.type'),
    'min.insync.replicas': String(config.get('min.insync.replicas')),
    'index.interval.bytes': String(config.get('log.index.interval.bytes')),
    'flush.policy': config.get('log.flush.policy'),
    'unclean.leader.election.enable': String(config.get('unclean.leader.election.enable')),
    'cleanup.policy': 'delete',
  };
}
