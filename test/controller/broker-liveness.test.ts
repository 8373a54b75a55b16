import { describe, expect, it } from 'vitest';
import { BrokerHeartbeatTracker, fenceStaleBrokers, handleHeartbeat, type BrokerHeartbeatRequest } from '../../src/controller/index.js';
import { KavkaError } from '../../src/util/errors.js';
import { cluster, fence, incarnation, replayAll } from './cluster-fixture.js';

const SESSION_MS = 9000;

describe('fencing brokers whose heartbeats stop (KIP-631, broker.session.timeout.ms)', () => {
  const image = cluster([1, 2, 3], [{ name: 't', replicas: [[1, 2, 3]] }]);

  it('fences a broker silent for longer than the session timeout, and moves its leadership in the same records', () => {
    const last = new Map([[1, 0], [2, 5000], [3, 5000]]);
    const records = fenceStaleBrokers(image, last, 9001, SESSION_MS);
    expect(records[0]).toEqual({ type: 'FenceBroker', nodeId: 1 });
    expect(replayAll(image, records).topic('t')?.partitions[0]).toMatchObject({ leader: 2, isr: [2, 3], leaderEpoch: 1 });
  });

  it.each([
    ['at exactly the session timeout', new Map([[1, 0], [2, 0], [3, 0]]), 9000],
    ['with no recorded heartbeat', new Map<number, number>(), 100_000],
  ])('does not fence %s', (_what, last, nowMs) => {
    expect(fenceStaleBrokers(image, last, nowMs, SESSION_MS)).toEqual([]);
  });

  it('does not fence an already fenced broker again', () => {
    expect(fenceStaleBrokers(fence(image, 1), new Map([[1, 0]]), 100_000, SESSION_MS)).toEqual([]);
  });

  it('starts every unfenced broker session when a controller becomes active, so failover fences nobody at once', () => {
    const tracker = BrokerHeartbeatTracker.startingAt(fence(image, 3), 50_000);
    expect([...tracker.lastHeartbeatMs]).toEqual([[1, 50_000], [2, 50_000]]);
    expect(fenceStaleBrokers(image, tracker.lastHeartbeatMs, 59_000, SESSION_MS)).toEqual([]);
    tracker.recordHeartbeat(1, 40_000);
    expect(tracker.lastHeartbeatMs.get(1)).toBe(50_000);
  });
});

describe('broker heartbeats', () => {
  const image = cluster([1, 2], [{ name: 't', replicas: [[1, 2]] }]);
  const heartbeat = (overrides: Partial<BrokerHeartbeatRequest> = {}): BrokerHeartbeatRequest => ({
    brokerId: 1, incarnationId: incarnation(1), wantFence: false, wantShutdown: false, ...overrides,
  });

  it('unfences a newly registered broker on its first accepted heartbeat (KIP-631)', () => {
    const registered = image.replay({ type: 'RegisterBroker', nodeId: 3, endpoints: [], incarnationId: 'x' });
    const { records, response, heartbeat: seen } = handleHeartbeat(registered, heartbeat({ brokerId: 3, incarnationId: 'x' }), 1234);
    expect(records).toEqual([{ type: 'UnfenceBroker', nodeId: 3 }]);
    expect(response).toEqual({ isFenced: false, shouldShutdown: false });
    expect(seen).toEqual({ brokerId: 3, atMs: 1234 });
  });

  it('writes nothing for a heartbeat from an unfenced broker', () => {
    expect(handleHeartbeat(image, heartbeat(), 0).records).toEqual([]);
  });

  it('keeps a broker that asks to stay fenced fenced', () => {
    const { records, response } = handleHeartbeat(fence(image, 1), heartbeat({ wantFence: true }), 0);
    expect(records).toEqual([]);
    expect(response.isFenced).toBe(true);
  });

  it('on controlled shutdown fences the broker, moves its leadership, and tells it to stop', () => {
    const { records, response } = handleHeartbeat(image, heartbeat({ wantShutdown: true }), 0);
    expect(response).toEqual({ isFenced: true, shouldShutdown: true });
    expect(replayAll(image, records).topic('t')?.partitions[0]).toMatchObject({ leader: 2, isr: [2] });
  });

  it('fences a broker that reports an offline log dir for data (leaders move, it leaves the ISR), and unfences it once the dir is back (Kavka issue 6)', () => {
    const offline = handleHeartbeat(image, heartbeat({ offlineLogDirs: ['/data/node-1'] }), 0);
    expect(offline.response).toEqual({ isFenced: true, shouldShutdown: false });
    expect(offline.records[0]).toEqual({ type: 'FenceBroker', nodeId: 1 });
    const fenced = replayAll(image, offline.records);
    expect(fenced.topic('t')?.partitions[0]).toMatchObject({ leader: 2, isr: [2] });
    // Still offline: nothing more to write; a heartbeat that no longer lists it unfences it.
    expect(handleHeartbeat(fenced, heartbeat({ offlineLogDirs: ['/data/node-1'] }), 0).records).toEqual([]);
    const back = handleHeartbeat(fenced, heartbeat({ offlineLogDirs: [] }), 0);
    expect(back.records).toEqual([{ type: 'UnfenceBroker', nodeId: 1 }]);
    // Back in service but not in the ISR: it rejoins only through the leader's AlterPartition.
    expect(replayAll(fenced, back.records).topic('t')?.partitions[0]).toMatchObject({ leader: 2, isr: [2] });
  });

  it('a broker that comes back leads the partitions left offline with it as last ISR member', () => {
    const after = (img: typeof image, request: BrokerHeartbeatRequest) => replayAll(img, handleHeartbeat(img, request, 0).records);
    const allDown = after(after(image, heartbeat({ brokerId: 2, incarnationId: incarnation(2), wantShutdown: true })), heartbeat({ wantShutdown: true }));
    expect(allDown.topic('t')?.partitions[0]).toMatchObject({ leader: -1, isr: [1] });
    expect(after(allDown, heartbeat()).topic('t')?.partitions[0]).toMatchObject({ leader: 1, isr: [1], leaderEpoch: 2 });
  });

  it.each([
    ['an old incarnation', heartbeat({ incarnationId: 'old' })],
    ['an unregistered broker', heartbeat({ brokerId: 9 })],
  ])('rejects a heartbeat from %s with STALE_BROKER_EPOCH', (_what, request) => {
    let caught: unknown;
    try {
      handleHeartbeat(image, request, 0);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(KavkaError);
    expect((caught as KavkaError).code).toBe('STALE_BROKER_EPOCH');
    expect((caught as KavkaError).numericCode).toBe(77);
  });
});
