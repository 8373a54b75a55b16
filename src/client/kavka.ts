// The entry point of the TypeScript client: `new Kavka({ clientId, brokers })`, then
// producer(), consumer() and admin(), as in kafkajs. This is the client's driver: it owns the
// clock, the random source and real timers, and hands them to everything it builds. Each
// producer, consumer and admin gets its own channels and metadata cache (closed by its
// disconnect()); the proto definition is loaded once per Kavka instance.
import { loadKavkaGrpc } from '../proto/index.js';
import { systemClock, type Clock } from '../util/clock.js';
import { KavkaError } from '../util/errors.js';
import type { ProtoGrpcType } from '../gen/kavka.js';
import { Admin } from './admin.js';
import { Cluster } from './cluster.js';
import { Consumer } from './consumer.js';
import { Producer } from './producer.js';
import { resolveRetryOptions } from './retry.js';
import { ConnectionPool, KavkaRpc } from './rpc.js';
import type { ClientLogger, ConsumerConfig, KavkaConfig, ProducerConfig, RetryOptions } from './types.js';

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;


export class Kavka {
  readonly clientId: string;
  private readonly brokers: string[];
  private readonly retry: RetryOptions;
  private readonly requestTimeoutMs: number;
  private readonly logger: ClientLogger | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private grpcType: ProtoGrpcType | undefined;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(config: KavkaConfig) {
    if (typeof config.clientId !== 'string' || config.clientId.length === 0) throw new KavkaError('INVALID_REQUEST', 'clientId must be a non-empty string', { retriable: false });
    if (!Array.isArray(config.brokers) || config.brokers.length === 0) throw new KavkaError('INVALID_REQUEST', 'brokers must list at least one "host:port" address', { retriable: false });
    this.clientId = config.clientId;
    this.brokers = [...config.brokers];
    this.retry = resolveRetryOptions(config.retry);
    this.requestTimeoutMs = config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isInteger(this.requestTimeoutMs) || this.requestTimeoutMs <= 0) throw new KavkaError('INVALID_REQUEST', `requestTimeoutMs must be a positive integer, got ${this.requestTimeoutMs}`, { retriable: false });
    this.logger = config.logger;
    this.clock = config.clock ?? systemClock;
    this.random = config.random ?? Math.random;
    const clock = this.clock;
    this.sleep = (ms) => new Promise((resolve) => clock.schedule(ms, resolve));
  }

  private connectionSet(): { pool: ConnectionPool; rpc: KavkaRpc; cluster: Cluster } {
    this.grpcType ??= loadKavkaGrpc();
    const pool = new ConnectionPool(this.clientId, this.grpcType);
    const rpc = new KavkaRpc(pool, this.requestTimeoutMs);
    const cluster = new Cluster(this.brokers, rpc, this.logger);
    return { pool, rpc, cluster };
  }

  producer(config: ProducerConfig = {}): Producer {
    const { pool, rpc, cluster } = this.connectionSet();
    return new Producer(config, {
      cluster,
      pool,
      rpc,
      clock: this.clock,
      random: this.random,
      sleep: this.sleep,
      retry: this.retry,
      requestTimeoutMs: this.requestTimeoutMs,
      logger: this.logger,
    });
  }

  consumer(config: ConsumerConfig = {}): Consumer {
    const { pool, rpc, cluster } = this.connectionSet();
    return new Consumer(config, { cluster, rpc, pool, clock: this.clock, random: this.random, sleep: this.sleep, retry: this.retry, logger: this.logger });
  }

  admin(): Admin {
    const { pool, rpc, cluster } = this.connectionSet();
    return new Admin({ cluster, rpc, pool, random: this.random, sleep: this.sleep, retry: this.retry, logger: this.logger });
  }
}
