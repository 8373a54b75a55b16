// `kavka topic create|list|describe|delete|alter|alter-config`, with kafka-topics' option names
// and output shapes.
import type { Writable } from 'node:stream';
import { Kavka, type Admin, type ITopicConfig, type TopicMetadata } from '../client/index.js';
import { CliError } from './cli-error.js';
import { parseLongOptions, type LongOptionSpec } from './getopt.js';
import { DEFAULT_BOOTSTRAP } from './cat-options.js';

export const TOPIC_USAGE = `Usage: kavka topic <command> [options]

Commands:
  create <name>        create a topic
      --partitions N  --replication-factor R  --config k=v (repeatable)
      --replica-assignment 1:2,2:3   (kafka-topics format: partitions by ",", replicas by ":")
      --if-not-exists
  list                 list topic names
  describe [name]      partitions with leader, replicas and ISR (all topics without a name)
  delete <name>        delete a topic (--if-exists)
  alter <name> --partitions N            raise the partition count
  alter-config <name> --config k=v --delete-config k   (each repeatable)

Options:
  -b, --bootstrap-server host:port   (default ${DEFAULT_BOOTSTRAP}; comma-separated for several)
  --topic <name>                     instead of the positional name
`;

const SPECS: LongOptionSpec[] = [
  { name: 'bootstrap-server', alias: '-b', takesValue: true },
  { name: 'topic', alias: '-t', takesValue: true },
  { name: 'partitions', takesValue: true },
  { name: 'replication-factor', takesValue: true },
  { name: 'config', takesValue: true, repeatable: true },
  { name: 'delete-config', takesValue: true, repeatable: true },
  { name: 'replica-assignment', takesValue: true },
  { name: 'if-not-exists', takesValue: false },
  { name: 'if-exists', takesValue: false },
  { name: 'help', alias: '-h', takesValue: false },
];

function positiveInteger(option: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliError(`--${option} ${value}: expected a positive integer`);
  return Number(value);
}

/** "k=v" pairs of --config. */
export function parseConfigs(list: readonly string[]): { name: string; value: string }[] {
  return list.map((entry) => {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new CliError(`--config ${entry}: expected key=value`);
    return { name: entry.slice(0, eq), value: entry.slice(eq + 1) };
  });
}

/** kafka-topics' --replica-assignment: "1:2,2:3" = partition 0 on brokers 1 and 2, partition 1 on 2 and 3. */
export function parseReplicaAssignment(text: string): { partition: number; replicas: number[] }[] {
  return text.split(',').map((part, partition) => {
    const replicas = part.split(':').map((id) => {
      if (!/^\d+$/.test(id.trim())) throw new CliError(`--replica-assignment ${text}: "${id}" is not a broker id`);
      return Number(id.trim());
    });
    if (new Set(replicas).size !== replicas.length) throw new CliError(`--replica-assignment ${text}: partition ${partition} names a broker twice`);
    return { partition, replicas };
  });
}

/** kafka-topics --describe lines for one topic. */
export function formatTopicDescription(topic: TopicMetadata, configs: { name: string; value: string | null }[]): string {
  const replicationFactor = topic.partitions[0]?.replicas.length ?? 0;
  const configText = configs.map((c) => `${c.name}=${c.value ?? ''}`).join(',');
  const lines = [`Topic: ${topic.name}\tPartitionCount: ${topic.partitions.length}\tReplicationFactor: ${replicationFactor}\tConfigs: ${configText}`];
  for (const p of topic.partitions) {
    let line = `\tTopic: ${topic.name}\tPartition: ${p.partitionId}\tLeader: ${p.leader < 0 ? 'none' : p.leader}\tReplicas: ${p.replicas.join(',')}\tIsr: ${p.isr.join(',')}`;
    if (p.offlineReplicas.length > 0) line += `\tOffline: ${p.offlineReplicas.join(',')}`;
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}

function topicName(command: string, positionals: string[], values: Map<string, string[]>): string {
  const name = values.get('topic')?.[0] ?? positionals[0];
  if (name === undefined) throw new CliError(`topic ${command} needs a topic name`, { usage: true });
  return name;
}

async function describe(admin: Admin, name: string | undefined, out: Writable): Promise<void> {
  const names = name === undefined ? (await admin.listTopics()).sort() : [name];
  if (names.length === 0) return;
  const { topics } = await admin.fetchTopicMetadata({ topics: names });
  const described = await admin.describeConfigs({ resources: names.map((n) => ({ type: 2, name: n })) });
  const configsOf = new Map(described.resources.map((r) => [r.resourceName, r.configEntries.filter((e) => !e.isDefault).map((e) => ({ name: e.configName, value: e.configValue }))]));
  for (const topic of [...topics].sort((a, b) => (a.name < b.name ? -1 : 1))) out.write(formatTopicDescription(topic, configsOf.get(topic.name) ?? []));
}

export async function runTopicCommand(argv: readonly string[], out: Writable): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out.write(TOPIC_USAGE);
    return command === undefined ? 1 : 0;
  }
  const { values, flags, positionals } = parseLongOptions(rest, SPECS);
  if (flags.has('help')) {
    out.write(TOPIC_USAGE);
    return 0;
  }
  const brokers = (values.get('bootstrap-server')?.[0] ?? DEFAULT_BOOTSTRAP).split(',').filter((b) => b.length > 0);
  const admin = new Kavka({ clientId: 'kavka-topic', brokers }).admin();
  try {
    switch (command) {
      case 'create': {
        const name = topicName(command, positionals, values);
        const assignment = values.get('replica-assignment')?.[0];
        const partitions = positiveInteger('partitions', values.get('partitions')?.[0]);
        const replicationFactor = positiveInteger('replication-factor', values.get('replication-factor')?.[0]);
        if (assignment !== undefined && (partitions !== undefined || replicationFactor !== undefined)) {
          throw new CliError('--replica-assignment cannot be combined with --partitions or --replication-factor');
        }
        const topic: ITopicConfig = { topic: name, configEntries: parseConfigs(values.get('config') ?? []) };
        if (assignment !== undefined) topic.replicaAssignment = parseReplicaAssignment(assignment);
        if (partitions !== undefined) topic.numPartitions = partitions;
        if (replicationFactor !== undefined) topic.replicationFactor = replicationFactor;
        const created = await admin.createTopics({ topics: [topic] });
        if (!created && !flags.has('if-not-exists')) throw new CliError(`TOPIC_ALREADY_EXISTS: topic '${name}' already exists`);
        if (created) out.write(`Created topic ${name}.\n`);
        return 0;
      }
      case 'list':
        for (const name of (await admin.listTopics()).sort()) out.write(`${name}\n`);
        return 0;
      case 'describe':
        await describe(admin, values.get('topic')?.[0] ?? positionals[0], out);
        return 0;
      case 'delete': {
        const name = topicName(command, positionals, values);
        try {
          await admin.deleteTopics({ topics: [name] });
        } catch (error) {
          if (flags.has('if-exists') && (error as { code?: string }).code === 'UNKNOWN_TOPIC_OR_PARTITION') return 0;
          throw error;
        }
        out.write(`Deleted topic ${name}.\n`);
        return 0;
      }
      case 'alter': {
        const name = topicName(command, positionals, values);
        const count = positiveInteger('partitions', values.get('partitions')?.[0]);
        if (count === undefined) throw new CliError('topic alter needs --partitions N');
        await admin.createPartitions({ topicPartitions: [{ topic: name, count }] });
        out.write(`Topic ${name} now has ${count} partitions.\n`);
        return 0;
      }
      case 'alter-config': {
        const name = topicName(command, positionals, values);
        const set = parseConfigs(values.get('config') ?? []).map((c) => ({ name: c.name, value: c.value, operation: 'SET' as const }));
        const deleted = (values.get('delete-config') ?? []).map((key) => ({ name: key, operation: 'DELETE' as const }));
        if (set.length + deleted.length === 0) throw new CliError('topic alter-config needs --config k=v or --delete-config k');
        await admin.alterConfigs({ resources: [{ type: 2, name, configEntries: [...set, ...deleted] }] });
        out.write(`Completed updating config for topic ${name}.\n`);
        return 0;
      }
      default:
        throw new CliError(`unknown topic command "${command}"`, { usage: true });
    }
  } finally {
    await admin.disconnect();
  }
}
