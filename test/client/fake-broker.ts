// A scripted kavka.v1.Kavka server for client tests that need failures a real single broker
// does not produce on demand (a moved leader, a partition error, a request-level error). Each
// test gives the handlers it needs; the others answer UNIMPLEMENTED.
import * as grpc from '@grpc/grpc-js';
import { loadKavkaGrpc } from '../../src/proto/index.js';
import type { KavkaHandlers } from '../../src/gen/kavka/v1/Kavka.js';
import type { MetadataResponse } from '../../src/gen/kavka/v1/MetadataResponse.js';

export interface FakeBroker {
  address: string;
  port: number;
  stop(): Promise<void>;
}

export async function startFakeBroker(handlers: Partial<KavkaHandlers>): Promise<FakeBroker> {
  const kavka = loadKavkaGrpc();
  const server = new grpc.Server();
  server.addService(kavka.kavka.v1.Kavka.service, handlers as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    port,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

/** A Metadata answer: `leaders[p]` is the node leading partition p of `topic`. */
export function metadataAnswer(topic: string, leaders: number[], brokers: { nodeId: number; port: number }[], answeringNodeId = brokers[0].nodeId): MetadataResponse {
  return {
    clusterId: 'fake',
    controllerId: brokers[0].nodeId,
    nodeId: answeringNodeId,
    brokers: brokers.map((b) => ({ nodeId: b.nodeId, host: '127.0.0.1', port: b.port, rack: '' })),
    topics: [
      {
        errorCode: 'NONE',
        name: topic,
        partitions: leaders.map((leader, partition) => ({ errorCode: 'NONE', partition, leaderId: leader, leaderEpoch: 0, replicas: [leader], isr: [leader] })),
      },
    ],
  };
}
