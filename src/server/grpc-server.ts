// One grpc-js server per named listener (CLIENT, INTERNAL, ...), so each knows which listener a
// request arrived on and Metadata can answer with that listener's endpoints. Every listener
// serves kavka.v1.Kavka, grpc.health.v1.Health and server reflection (grpcurl needs no .proto);
// the controller listener (controller.listener.names) also serves kavka.v1.Raft and
// kavka.v1.Controller, and the inter-broker listener kavka.v1.Replication.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { loadControllerGrpc, loadKavkaGrpc, loadKavkaPackageDefinition } from '../proto/index.js';
import { raftServiceDefinition } from '../raft/index.js';
import type { Listener } from '../config/index.js';
import type { ServerContext } from './context.js';
import { KavkaService } from './kavka-service.js';
import { tolerantDefinition } from './request-guard.js';
import { StreamRegistry } from './stream-registry.js';
import { AdminHandler } from './admin-handler.js';
import { ControllerService } from './controller-service.js';
import { replicationDefinition, replicationHandlers } from './replication-service.js';

/** Room for protobuf framing around the largest batch, so an oversized batch reaches the broker and gets MESSAGE_TOO_LARGE. */
const RECEIVE_LIMIT_FLOOR_BYTES = 64 * 1024 * 1024;

export interface BoundListener {
  name: string;
  host: string;
  /** The bound port (the OS's choice when the config said 0). */
  port: number;
}

export class GrpcServers {
  private readonly servers: grpc.Server[] = [];
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', 'kavka.v1.Kavka': 'NOT_SERVING' });
  readonly bound: BoundListener[] = [];
  private readonly streams = new StreamRegistry();

  constructor(
    private readonly context: ServerContext,
    /** The receiving side of Raft (GrpcRaftTransport#serviceHandlers), served on the controller listener. */
    private readonly raftHandlers: grpc.UntypedServiceImplementation,
    /** Ends the peers' open Raft streams, which would otherwise hold a graceful shutdown. */
    private readonly endRaftStreams: () => void = () => undefined,
  ) {}

  async listen(listeners: readonly Listener[]): Promise<BoundListener[]> {
    const definition = loadKavkaPackageDefinition();
    const kavka = loadKavkaGrpc(definition);
    const reflection = new ReflectionService(definition);
    const controllerDefinition = loadControllerGrpc().kavka.v1.Controller.service;
    const receiveLimit = Math.max(RECEIVE_LIMIT_FLOOR_BYTES, this.context.config.get('message.max.bytes') * 4);
    const sendLimit = this.context.config.get('fetch.max.bytes') + 16 * 1024 * 1024;
    for (const listener of listeners) {
      const server = new grpc.Server({
        'grpc.max_receive_message_length': receiveLimit,
        'grpc.max_send_message_length': sendLimit,
        'grpc.keepalive_permit_without_calls': 1,
      });
      const service = new KavkaService(this.context, listener.name, this.streams);
      server.addService(tolerantDefinition(kavka.kavka.v1.Kavka.service), service.handlers() as unknown as grpc.UntypedServiceImplementation);
      if (listener.name === this.context.config.controllerListener) {
        server.addService(raftServiceDefinition(), this.raftHandlers);
        const controllerService = new ControllerService(this.context, new AdminHandler(this.context));
        server.addService(tolerantDefinition(controllerDefinition), controllerService.handlers() as unknown as grpc.UntypedServiceImplementation);
      }
      if (listener.name === this.context.config.get('inter.broker.listener.name').toUpperCase()) {
        server.addService(tolerantDefinition(replicationDefinition()), replicationHandlers(this.context) as unknown as grpc.UntypedServiceImplementation);
      }
      this.health.addToServer(server);
      reflection.addToServer(server);
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`${listener.host}:${listener.port}`, grpc.ServerCredentials.createInsecure(), (error, boundPort) => {
          if (error) reject(new Error(`cannot listen on ${listener.name}://${listener.host}:${listener.port}: ${error.message}`, { cause: error }));
          else resolve(boundPort);
        });
      });
      this.servers.push(server);
      this.bound.push({ name: listener.name, host: listener.host, port });
    }
    return this.bound;
  }

  setServing(serving: boolean): void {
    const status = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus('kavka.v1.Kavka', status);
  }

  /** Stops accepting calls, lets running ones finish for up to graceMs, then cancels the rest. */
  async close(graceMs: number): Promise<void> {
    this.setServing(false);
    this.streams.closeAll();
    const closed = this.servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          const cancel = this.context.clock.schedule(graceMs, () => {
            server.forceShutdown();
            resolve();
          });
          server.tryShutdown(() => {
            cancel();
            resolve();
          });
        }),
    );
    // The servers take no new calls now; long-lived Raft streams from peers end here.
    this.endRaftStreams();
    await Promise.all(closed);
  }
}
