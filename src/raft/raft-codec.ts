// Maps the core's plain values (messages.ts, types.ts) to and from the protobuf messages of
// proto/kavka/v1/raft.proto. One mapping serves the wire (grpc-js, via proto-loader objects) and
// the disk (level values are the same protobuf messages, encoded here with protobufjs), so the
// persisted layout is documented by the .proto file.
//
// Proto object form (proto-loader's and protobufjs toObject with the shared options): int64 as a
// decimal string, enums as their names, bytes as Buffer, oneofs named by a virtual `body` field.
//
// Decoding is the boundary to the world: anything malformed throws KavkaError CORRUPT_MESSAGE
// (never an assertion), and the caller drops the message or refuses to start.
//
// Level value layout (every value): crc32c (4 bytes, big-endian) of the protobuf bytes, then the
// protobuf bytes of RaftEntry, RaftSnapshot or RaftHardState. The CRC is checked on every read.
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { RaftMessage, RaftMessage__Output } from '../gen/kavka/v1/RaftMessage.js';
import type { RaftEntry, RaftEntry__Output } from '../gen/kavka/v1/RaftEntry.js';
import type { RaftSnapshot, RaftSnapshot__Output } from '../gen/kavka/v1/RaftSnapshot.js';
import type { RaftHardState, RaftHardState__Output } from '../gen/kavka/v1/RaftHardState.js';
import type { RaftConfigChange, RaftConfigChange__Output } from '../gen/kavka/v1/RaftConfigChange.js';
import type { RaftClusterConfig, RaftClusterConfig__Output } from '../gen/kavka/v1/RaftClusterConfig.js';
import { PROTO_DIR } from '../proto/load.js';
import { assertNever } from '../util/assert.js';
import { crc32c } from '../util/crc32c.js';
import { KavkaError } from '../util/errors.js';
import type { Message } from './messages.js';
import type { ClusterConfig, ConfigChange, Entry, HardState, NodeId, Snapshot } from './types.js';

/** The proto file that defines kavka.v1.Raft, relative to PROTO_DIR. */
export const RAFT_PROTO_FILE = 'kavka/v1/raft.proto';

/** Encodes "no node" in int32 id fields. */
export const NO_NODE_ID = -1;

/** A message as it arrived: the envelope's cluster id plus the core's message. */
export interface DecodedRaftMessage {
  readonly clusterId: string;
  readonly message: Message;
}

// ---------------------------------------------------------------------------------------------
// Messages

export function messageToProto(clusterId: string, m: Message): RaftMessage {
  const envelope = { clusterId, from: m.from, to: m.to, term: String(m.term) };
  switch (m.type) {
    case 'append':
      return {
        ...envelope,
        append: { prevIndex: String(m.prevIndex), prevTerm: String(m.prevTerm), entries: m.entries.map(entryToProto), commit: String(m.commit) },
      };
    case 'append-response':
      return {
        ...envelope,
        appendResponse: {
          reject: m.reject,
          index: String(m.index),
          conflictTerm: String(m.conflictTerm),
          conflictIndex: String(m.conflictIndex),
          ...(m.rejoining === true ? { rejoining: true } : {}),
        },
      };
    case 'heartbeat':
      return { ...envelope, heartbeat: { commit: String(m.commit) } };
    case 'heartbeat-response':
      return { ...envelope, heartbeatResponse: m.rejoining === undefined ? {} : { rejoining: true, lastIndex: String(m.rejoining.lastIndex) } };
    case 'vote':
      return { ...envelope, vote: { preVote: m.preVote, transfer: m.transfer, lastIndex: String(m.lastIndex), lastTerm: String(m.lastTerm) } };
    case 'vote-response':
      return { ...envelope, voteResponse: { preVote: m.preVote, granted: m.granted } };
    case 'install-snapshot':
      return { ...envelope, installSnapshot: { snapshot: snapshotToProto(m.snapshot) } };
    case 'timeout-now':
      return { ...envelope, timeoutNow: {} };
    default:
      return assertNever(m, 'message');
  }
}

/** Throws KavkaError CORRUPT_MESSAGE if the message is not a valid Raft message. */
export function messageFromProto(p: RaftMessage__Output): DecodedRaftMessage {
  const envelope = { from: nodeId(p.from, 'from'), to: nodeId(p.to, 'to'), term: int64(p.term, 'term') };
  const message = bodyFromProto(p, envelope);
  return { clusterId: p.clusterId, message };
}

function bodyFromProto(p: RaftMessage__Output, envelope: { from: NodeId; to: NodeId; term: number }): Message {
  switch (p.body) {
    case 'append': {
      const b = present(p.append, 'append');
      return {
        ...envelope,
        type: 'append',
        prevIndex: int64(b.prevIndex, 'prevIndex'),
        prevTerm: int64(b.prevTerm, 'prevTerm'),
        entries: b.entries.map(entryFromProto),
        commit: int64(b.commit, 'commit'),
      };
    }
    case 'appendResponse': {
      const b = present(p.appendResponse, 'appendResponse');
      return {
        ...envelope,
        type: 'append-response',
        reject: b.reject,
        index: int64(b.index, 'index'),
        conflictTerm: int64(b.conflictTerm, 'conflictTerm'),
        conflictIndex: int64(b.conflictIndex, 'conflictIndex'),
        ...(b.rejoining ? { rejoining: true } : {}),
      };
    }
    case 'heartbeat':
      return { ...envelope, type: 'heartbeat', commit: int64(present(p.heartbeat, 'heartbeat').commit, 'commit') };
    case 'heartbeatResponse': {
      const b = present(p.heartbeatResponse, 'heartbeatResponse');
      if (!b.rejoining) return { ...envelope, type: 'heartbeat-response' };
      return { ...envelope, type: 'heartbeat-response', rejoining: { lastIndex: int64(b.lastIndex, 'lastIndex') } };
    }
    case 'vote': {
      const b = present(p.vote, 'vote');
      return {
        ...envelope,
        type: 'vote',
        preVote: b.preVote,
        transfer: b.transfer,
        lastIndex: int64(b.lastIndex, 'lastIndex'),
        lastTerm: int64(b.lastTerm, 'lastTerm'),
      };
    }
    case 'voteResponse': {
      const b = present(p.voteResponse, 'voteResponse');
      return { ...envelope, type: 'vote-response', preVote: b.preVote, granted: b.granted };
    }
    case 'installSnapshot':
      return { ...envelope, type: 'install-snapshot', snapshot: snapshotFromProto(present(present(p.installSnapshot, 'installSnapshot').snapshot, 'snapshot')) };
    case 'timeoutNow':
      return { ...envelope, type: 'timeout-now' };
    case undefined:
      throw corrupt('a Raft message without a body');
    default:
      return assertNever(p.body, 'message body');
  }
}

// ---------------------------------------------------------------------------------------------
// Entries, snapshots, hard state

export function entryToProto(e: Entry): RaftEntry {
  const base = { index: String(e.index), term: String(e.term) };
  switch (e.payload.kind) {
    case 'normal':
      return { ...base, type: 'RAFT_ENTRY_TYPE_NORMAL', data: e.payload.data };
    case 'noop':
      return { ...base, type: 'RAFT_ENTRY_TYPE_NOOP' };
    case 'config':
      return { ...base, type: 'RAFT_ENTRY_TYPE_CONFIG', change: configChangeToProto(e.payload.change) };
    default:
      return assertNever(e.payload, 'entry payload');
  }
}

export function entryFromProto(p: RaftEntry__Output): Entry {
  const index = int64(p.index, 'entry index');
  const term = int64(p.term, 'entry term');
  if (index < 1 || term < 1) throw corrupt(`entry index ${index} and term ${term} start at 1`);
  switch (p.type) {
    case 'RAFT_ENTRY_TYPE_NORMAL':
      return { index, term, payload: { kind: 'normal', data: toUint8Array(p.data) } };
    case 'RAFT_ENTRY_TYPE_NOOP':
      return { index, term, payload: { kind: 'noop' } };
    case 'RAFT_ENTRY_TYPE_CONFIG':
      return { index, term, payload: { kind: 'config', change: configChangeFromProto(present(p.change, 'entry change')) } };
    case 'RAFT_ENTRY_TYPE_UNSPECIFIED':
      throw corrupt(`entry ${index} has no type`);
    default:
      return assertNever(p.type, 'entry type');
  }
}

function configChangeToProto(c: ConfigChange): RaftConfigChange {
  switch (c.type) {
    case 'add-voter':
      return { type: 'RAFT_CONFIG_CHANGE_TYPE_ADD_VOTER', nodeId: c.nodeId, ...(c.directoryId === undefined ? {} : { directoryId: c.directoryId }) };
    case 'remove-voter':
      return { type: 'RAFT_CONFIG_CHANGE_TYPE_REMOVE_VOTER', nodeId: c.nodeId };
    case 'add-learner':
      return { type: 'RAFT_CONFIG_CHANGE_TYPE_ADD_LEARNER', nodeId: c.nodeId };
    case 'remove-learner':
      return { type: 'RAFT_CONFIG_CHANGE_TYPE_REMOVE_LEARNER', nodeId: c.nodeId };
    default:
      return assertNever(c, 'config change');
  }
}

function configChangeFromProto(p: RaftConfigChange__Output): ConfigChange {
  const id = nodeId(p.nodeId, 'change nodeId');
  switch (p.type) {
    case 'RAFT_CONFIG_CHANGE_TYPE_ADD_VOTER':
      return p.directoryId === '' ? { type: 'add-voter', nodeId: id } : { type: 'add-voter', nodeId: id, directoryId: p.directoryId };
    case 'RAFT_CONFIG_CHANGE_TYPE_REMOVE_VOTER':
      return { type: 'remove-voter', nodeId: id };
    case 'RAFT_CONFIG_CHANGE_TYPE_ADD_LEARNER':
      return { type: 'add-learner', nodeId: id };
    case 'RAFT_CONFIG_CHANGE_TYPE_REMOVE_LEARNER':
      return { type: 'remove-learner', nodeId: id };
    case 'RAFT_CONFIG_CHANGE_TYPE_UNSPECIFIED':
      throw corrupt('a config change without a type');
    default:
      return assertNever(p.type, 'config change type');
  }
}

function configToProto(c: ClusterConfig): RaftClusterConfig {
  return { voters: [...c.voters], learners: [...c.learners], ...(c.voterDirectories === undefined ? {} : { voterDirectories: { ...c.voterDirectories } }) };
}

function configFromProto(p: RaftClusterConfig__Output): ClusterConfig {
  const voters = p.voters.map((v) => nodeId(v, 'voter'));
  const learners = p.learners.map((l) => nodeId(l, 'learner'));
  if (voters.length === 0) throw corrupt('a configuration without voters');
  const directories = Object.entries(p.voterDirectories ?? {});
  if (directories.length === 0) return { voters, learners };
  return { voters, learners, voterDirectories: Object.fromEntries(directories) };
}

export function snapshotToProto(s: Snapshot): RaftSnapshot {
  const { index, term, config } = s.metadata;
  return { metadata: { index: String(index), term: String(term), config: configToProto(config) }, data: s.data };
}

export function snapshotFromProto(p: RaftSnapshot__Output): Snapshot {
  const metadata = present(p.metadata, 'snapshot metadata');
  return {
    metadata: {
      index: int64(metadata.index, 'snapshot index'),
      term: int64(metadata.term, 'snapshot term'),
      config: configFromProto(present(metadata.config, 'snapshot config')),
    },
    data: toUint8Array(p.data),
  };
}

export function hardStateToProto(h: HardState): RaftHardState {
  return { term: String(h.term), votedFor: h.votedFor ?? NO_NODE_ID, commit: String(h.commit), ...(h.rejoining === true ? { rejoining: true } : {}) };
}

export function hardStateFromProto(p: RaftHardState__Output): HardState {
  return {
    term: int64(p.term, 'hard state term'),
    votedFor: p.votedFor === NO_NODE_ID ? undefined : nodeId(p.votedFor, 'votedFor'),
    commit: int64(p.commit, 'hard state commit'),
    ...(p.rejoining ? { rejoining: true } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Binary form for level values (see the layout in the file header)

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
root.loadSync(RAFT_PROTO_FILE);
const EntryType = root.lookupType('kavka.v1.RaftEntry');
const SnapshotType = root.lookupType('kavka.v1.RaftSnapshot');
const HardStateType = root.lookupType('kavka.v1.RaftHardState');

/** The same conversion options proto-loader uses (src/proto/load.ts). */
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

export function encodeEntryValue(e: Entry): Uint8Array {
  return withCrc(EntryType.encode(EntryType.fromObject(entryToProto(e))).finish());
}

export function decodeEntryValue(value: Uint8Array): Entry {
  return entryFromProto(EntryType.toObject(EntryType.decode(checkCrc(value, 'entry')), TO_OBJECT) as RaftEntry__Output);
}

export function encodeSnapshotValue(s: Snapshot): Uint8Array {
  return withCrc(SnapshotType.encode(SnapshotType.fromObject(snapshotToProto(s))).finish());
}

export function decodeSnapshotValue(value: Uint8Array): Snapshot {
  return snapshotFromProto(SnapshotType.toObject(SnapshotType.decode(checkCrc(value, 'snapshot')), TO_OBJECT) as RaftSnapshot__Output);
}

export function encodeHardStateValue(h: HardState): Uint8Array {
  return withCrc(HardStateType.encode(HardStateType.fromObject(hardStateToProto(h))).finish());
}

export function decodeHardStateValue(value: Uint8Array): HardState {
  return hardStateFromProto(HardStateType.toObject(HardStateType.decode(checkCrc(value, 'hard state')), TO_OBJECT) as RaftHardState__Output);
}

function withCrc(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, crc32c(body));
  out.set(body, 4);
  return out;
}

function checkCrc(value: Uint8Array, what: string): Uint8Array {
  if (value.length < 4) throw corrupt(`stored ${what} is ${value.length} bytes, shorter than its CRC`);
  const body = value.subarray(4);
  const stored = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
  const actual = crc32c(body);
  if (stored !== actual) throw corrupt(`stored ${what} fails its CRC (stored ${stored}, computed ${actual})`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Field checks

function int64(value: string, field: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw corrupt(`${field} = ${value} is not a non-negative safe integer`);
  return n;
}

function nodeId(value: number, field: string): NodeId {
  if (!Number.isInteger(value) || value < 0) throw corrupt(`${field} = ${value} is not a node id`);
  return value;
}

function present<T>(value: T | null | undefined, field: string): T {
  if (value === null || value === undefined) throw corrupt(`${field} is missing`);
  return value;
}

function toUint8Array(data: Buffer | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function corrupt(message: string): KavkaError {
  return new KavkaError('CORRUPT_MESSAGE', message);
}
