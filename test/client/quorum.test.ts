// Admin's controller-quorum calls (KIP-595 DescribeQuorum, KIP-853 AddRaftVoter/RemoveRaftVoter):
// against a real single-node broker (node 1 is the only voter), and against a scripted broker
// for the retry of NOT_CONTROLLER.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { Kavka, KavkaError, type Admin } from '../../src/client/index.js';
import { toServiceError } from '../../src/proto/index.js';
import { metadataAnswer, startFakeBroker, type FakeBroker } from './fake-broker.js';
import type { DescribeQuorumResponse } from '../../src/gen/kavka/v1/DescribeQuorumResponse.js';
import type { AddRaftVoterRequest__Output } from '../../src/gen/kavka/v1/AddRaftVoterRequest.js';
import type { AddRaftVoterResponse } from '../../src/gen/kavka/v1/AddRaftVoterResponse.js';

const fast = { retries: 3, initialRetryTimeMs: 10, maxRetryTimeMs: 50 };

describe('Admin quorum calls against a single-node broker', () => {
  let node: TestBroker;
  let admin: Admin;

  beforeAll(async () => {
    node = await startTestBroker();
    admin = new Kavka({ clientId: 'quorum-test', brokers: [node.clientAddress], retry: fast }).admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin?.disconnect();
    await node?.destroy();
  });

  it('describes the quorum: node 1 leads and is the only voter, with no lag', async () => {
    const quorum = await admin.describeQuorum();
    expect(quorum).toMatchObject({ leaderId: 1, observers: [] });
    expect(quorum.leaderEpoch).toBeGreaterThanOrEqual(1);
    expect(BigInt(quorum.highWatermark)).toBeGreaterThanOrEqual(1n);
    expect(quorum.voters).toEqual([{ replicaId: 1, logEndOffset: expect.stringMatching(/^\d+$/), lag: '0', directoryId: expect.stringMatching(/^[0-9a-f-]{36}$/), rejoining: false }]);
    expect(BigInt(quorum.voters[0].logEndOffset)).toBeGreaterThanOrEqual(BigInt(quorum.highWatermark));
  });

  it('refuses to add a node that does not follow the metadata log (not retried)', async () => {
    const failure = await admin.addRaftVoter(7).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(KavkaError);
    expect(failure).toMatchObject({ code: 'INVALID_REQUEST', retriable: false });
    expect((failure as KavkaError).message).toContain('node 7 does not follow the metadata log yet');
  });

  it('refuses to remove the last voter', async () => {
    const failure = await admin.removeRaftVoter(1).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'INVALID_REQUEST', retriable: false });
    expect((failure as KavkaError).message).toContain('node 1 is the last voter');
    expect((await admin.describeQuorum()).voters.map((v) => v.replicaId)).toEqual([1]);
  });

  it('refuses an id that is not a 32-bit non-negative integer before sending', async () => {
    for (const id of [-1, 1.5, 2 ** 31, Number.NaN]) {
      await expect(admin.addRaftVoter(id)).rejects.toMatchObject({ code: 'INVALID_REQUEST', retriable: false });
      await expect(admin.removeRaftVoter(id)).rejects.toMatchObject({ code: 'INVALID_REQUEST', retriable: false });
    }
  });
});

describe('Admin quorum calls against a scripted broker', () => {
  const brokers: FakeBroker[] = [];

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.stop()));
  });

  it('retries NOT_CONTROLLER after a metadata refresh, then returns the answer', async () => {
    let metadataCalls = 0;
    let describeCalls = 0;
    const answer: DescribeQuorumResponse = {
      leaderId: 2,
      leaderEpoch: '5',
      highWatermark: '41',
      voters: [
        { replicaId: 2, logEndOffset: '42', lag: '0', directoryId: 'dir-2' },
        { replicaId: 1, logEndOffset: '40', lag: '2', directoryId: 'dir-1' },
      ],
      observers: [{ replicaId: 4, logEndOffset: '-1', lag: '42', directoryId: 'dir-4', rejoining: true }],
    };
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => {
        metadataCalls++;
        callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }]));
      },
      DescribeQuorum: (_call: grpc.ServerUnaryCall<unknown, DescribeQuorumResponse>, callback: grpc.sendUnaryData<DescribeQuorumResponse>) => {
        describeCalls++;
        if (describeCalls === 1) callback(toServiceError(new KavkaError('NOT_CONTROLLER', 'the controller moved', { retriable: true })));
        else callback(null, answer);
      },
    });
    brokers.push(broker);
    const admin = new Kavka({ clientId: 'quorum-retry', brokers: [broker.address], retry: fast }).admin();
    await admin.connect();
    const metadataBefore = metadataCalls;
    const quorum = await admin.describeQuorum();
    await admin.disconnect();
    expect(describeCalls).toBe(2);
    expect(metadataCalls).toBeGreaterThan(metadataBefore);
    expect(quorum).toEqual({
      leaderId: 2,
      leaderEpoch: 5,
      highWatermark: '41',
      voters: [
        { replicaId: 2, logEndOffset: '42', lag: '0', directoryId: 'dir-2', rejoining: false },
        { replicaId: 1, logEndOffset: '40', lag: '2', directoryId: 'dir-1', rejoining: false },
      ],
      observers: [{ replicaId: 4, logEndOffset: '-1', lag: '42', directoryId: 'dir-4', rejoining: true }],
    });
  });

  it('sends the voter id and gives up after the configured retries', async () => {
    const seen: number[] = [];
    const broker = await startFakeBroker({
      Metadata: (_call, callback) => callback(null, metadataAnswer('t', [1], [{ nodeId: 1, port: broker.port }])),
      AddRaftVoter: (call: grpc.ServerUnaryCall<AddRaftVoterRequest__Output, AddRaftVoterResponse>, callback: grpc.sendUnaryData<AddRaftVoterResponse>) => {
        seen.push(call.request.voterId);
        callback(toServiceError(new KavkaError('NOT_CONTROLLER', 'no active controller', { retriable: true })));
      },
    });
    brokers.push(broker);
    const admin = new Kavka({ clientId: 'quorum-give-up', brokers: [broker.address], retry: { ...fast, retries: 2 } }).admin();
    const failure = await admin.addRaftVoter(4).catch((e: unknown) => e);
    await admin.disconnect();
    expect(failure).toMatchObject({ code: 'NOT_CONTROLLER', retriable: true });
    expect(seen).toEqual([4, 4, 4]);
  });
});
