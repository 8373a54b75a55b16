// `kavka controller describe|add-voter|remove-voter`: the metadata quorum, shaped like Kafka's
// `kafka-metadata-quorum describe --status/--replication` and `add-controller`/`remove-controller`.
// Any broker answers; it asks the active controller.
import type { Writable } from 'node:stream';
import { Kavka, type QuorumInfo, type QuorumReplicaState } from '../client/index.js';
import { CliError } from './cli-error.js';
import { parseLongOptions, type LongOptionSpec } from './getopt.js';
import { DEFAULT_BOOTSTRAP } from './cat-options.js';

export const CONTROLLER_USAGE = `Usage: kavka controller <command> [options]

Commands:
  describe             the metadata quorum: leader, epoch, high watermark, then each voter's
                       and observer's log end offset and lag
      --json           print one JSON object instead
  add-voter <id>       make node <id> a controller voter; it must already follow the metadata
                       log as an observer (e.g. started with process.roles=broker)
  remove-voter <id>    remove node <id> from the voters (while registered it stays an observer)

Options:
  -b, --bootstrap-server host:port   (default ${DEFAULT_BOOTSTRAP}; comma-separated for several)
`;

const SPECS: LongOptionSpec[] = [
  { name: 'bootstrap-server', alias: '-b', takesValue: true },
  { name: 'json', takesValue: false },
  { name: 'help', alias: '-h', takesValue: false },
];

/** The single `<id>` argument of add-voter / remove-voter. */
export function parseVoterId(command: string, positionals: readonly string[]): number {
  const [text, ...extra] = positionals;
  if (text === undefined) throw new CliError(`controller ${command} needs <id>, the node id of the voter`, { usage: true });
  if (extra.length > 0) throw new CliError(`controller ${command} takes one <id>, got ${positionals.join(' ')}`, { usage: true });
  if (!/^\d+$/.test(text) || Number(text) > 0x7fffffff) throw new CliError(`controller ${command}: <id> "${text}" is not a node id (expected a non-negative integer)`, { usage: true });
  return Number(text);
}

function statusOf(quorum: QuorumInfo, replica: QuorumReplicaState, voter: boolean): string {
  if (replica.replicaId === quorum.leaderId) return 'Leader';
  const role = voter ? 'Follower' : 'Observer';
  return replica.rejoining ? `${role} (rejoining: its data was deleted)` : role;
}

/** Left-aligned columns, two spaces apart. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ')).join('\n');
}

/** kafka-metadata-quorum's --status block, then its --replication table (voters first). */
export function formatQuorum(quorum: QuorumInfo): string {
  const ids = (replicas: QuorumReplicaState[]) => `[${replicas.map((r) => r.replicaId).join(',')}]`;
  const status = [
    `LeaderId:          ${quorum.leaderId}`,
    `LeaderEpoch:       ${quorum.leaderEpoch}`,
    `HighWatermark:     ${quorum.highWatermark}`,
    `CurrentVoters:     ${ids(quorum.voters)}`,
    `CurrentObservers:  ${ids(quorum.observers)}`,
  ];
  const rows = [
    ['NodeId', 'DirectoryId', 'LogEndOffset', 'Lag', 'Status'],
    ...quorum.voters.map((r) => [String(r.replicaId), r.directoryId || '-', r.logEndOffset, r.lag, statusOf(quorum, r, true)]),
    ...quorum.observers.map((r) => [String(r.replicaId), r.directoryId || '-', r.logEndOffset, r.lag, statusOf(quorum, r, false)]),
  ];
  return `${status.join('\n')}\n\n${table(rows)}\n`;
}

/** One JSON object; metadata log offsets are far below 2^53, so they print as numbers. */
export function quorumJson(quorum: QuorumInfo): string {
  const replica = (r: QuorumReplicaState) => ({ replicaId: r.replicaId, directoryId: r.directoryId, logEndOffset: Number(r.logEndOffset), lag: Number(r.lag), rejoining: r.rejoining });
  return `${JSON.stringify({
    leaderId: quorum.leaderId,
    leaderEpoch: quorum.leaderEpoch,
    highWatermark: Number(quorum.highWatermark),
    voters: quorum.voters.map(replica),
    observers: quorum.observers.map(replica),
  })}\n`;
}

export async function runControllerCommand(argv: readonly string[], out: Writable): Promise<number> {
  if (argv.length === 0) {
    out.write(CONTROLLER_USAGE);
    return 1;
  }
  // A negative id would otherwise read as an unknown option.
  const negative = argv.find((word) => /^-\d/.test(word));
  if (negative !== undefined) throw new CliError(`controller: <id> "${negative}" is not a node id (expected a non-negative integer)`, { usage: true });
  // Options may come before or after the command word: `kavka controller -b h:p describe`.
  const { values, flags, positionals: words } = parseLongOptions(argv, SPECS);
  const [command, ...positionals] = words;
  if (flags.has('help') || command === 'help') {
    out.write(CONTROLLER_USAGE);
    return 0;
  }
  if (command === undefined) throw new CliError('kavka controller needs a command: describe, add-voter or remove-voter', { usage: true });
  // Arguments are checked before any connection is made.
  let voterId: number | undefined;
  switch (command) {
    case 'describe':
      if (positionals.length > 0) throw new CliError(`controller describe takes no arguments, got ${positionals.join(' ')}`, { usage: true });
      break;
    case 'add-voter':
    case 'remove-voter':
      if (flags.has('json')) throw new CliError(`--json applies to controller describe only`, { usage: true });
      voterId = parseVoterId(command, positionals);
      break;
    default:
      throw new CliError(`unknown controller command "${command}"`, { usage: true });
  }
  const brokers = (values.get('bootstrap-server')?.[0] ?? DEFAULT_BOOTSTRAP).split(',').filter((b) => b.length > 0);
  const admin = new Kavka({ clientId: 'kavka-controller', brokers }).admin();
  try {
    if (voterId === undefined) {
      const quorum = await admin.describeQuorum();
      out.write(flags.has('json') ? quorumJson(quorum) : formatQuorum(quorum));
    } else if (command === 'add-voter') {
      await admin.addRaftVoter(voterId);
      out.write(`Added node ${voterId} to the controller voters.\n`);
    } else {
      await admin.removeRaftVoter(voterId);
      out.write(`Removed node ${voterId} from the controller voters.\n`);
    }
    return 0;
  } finally {
    await admin.disconnect();
  }
}
