// Prometheus metrics of one node, in a registry of its own (no global state: tests run many
// nodes in one process). Per-partition gauges are read from the logs at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { PartitionState, ReplicaManager } from '../replication/index.js';
import type { FailuresTolerated } from '../controller/index.js';

/** What the metrics read from the node's log dir. */
export interface LogDirMetricsSource {
  readonly state: { readonly kind: 'online' | 'offline' };
  /** Times the dir went offline since start-up. */
  readonly failures: number;
  /** Partitions opened with a corrupt batch repaired, since start-up. */
  readonly corruptionRepairs: number;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly produceRequests: Counter<'topic'>;
  readonly produceRecords: Counter<'topic'>;
  readonly produceBytes: Counter<'topic'>;
  readonly fetchRequests: Counter<'topic'>;
  readonly fetchBytes: Counter<'topic'>;
  readonly errors: Counter<'method' | 'code'>;

  constructor(
    nodeId: number,
    replicaManager: () => ReplicaManager | undefined,
    logDir: () => LogDirMetricsSource,
    /** The partition's failures tolerated now (controller/availability.ts). */
    failuresTolerated: (p: PartitionState) => FailuresTolerated = () => ({ write: 0, data: 0 }),
  ) {
    this.registry.setDefaultLabels({ node_id: String(nodeId) });
    const registers = [this.registry];
    this.produceRequests = new Counter({ name: 'kavka_produce_requests_total', help: 'Partition appends per topic (one per partition per produce request that succeeded).', labelNames: ['topic'], registers });
    this.produceRecords = new Counter({ name: 'kavka_produce_records_total', help: 'Records appended per topic.', labelNames: ['topic'], registers });
    this.produceBytes = new Counter({ name: 'kavka_produce_bytes_total', help: 'Batch bytes appended per topic.', labelNames: ['topic'], registers });
    this.fetchRequests = new Counter({ name: 'kavka_fetch_requests_total', help: 'Partition reads per topic (one per partition per fetch answered without error).', labelNames: ['topic'], registers });
    this.fetchBytes = new Counter({ name: 'kavka_fetch_bytes_total', help: 'Batch bytes returned by fetches per topic.', labelNames: ['topic'], registers });
    this.errors = new Counter({ name: 'kavka_request_errors_total', help: 'Errors answered, by method and Kafka error name.', labelNames: ['method', 'code'], registers });

    // `ledOnly`: replication state, reported by each partition's leader only (one series per partition in the cluster).
    const perPartition = (name: string, help: string, read: (p: PartitionState) => bigint | number, ledOnly = false) =>
      new Gauge({
        name,
        help,
        labelNames: ['topic', 'partition'],
        registers,
        collect() {
          this.reset();
          for (const p of replicaManager()?.allPartitions() ?? []) {
            if (ledOnly && !p.isLeader) continue;
            this.set({ topic: p.topicPartition.topic, partition: String(p.topicPartition.partition) }, Number(read(p)));
          }
        },
      });
    perPartition('kavka_partition_log_end_offset', 'Next offset to be assigned.', (p) => p.log.logEndOffset);
    perPartition('kavka_partition_log_start_offset', 'First offset still readable.', (p) => p.log.logStartOffset);
    perPartition('kavka_partition_high_watermark', 'Offsets below this are visible to consumers.', (p) => p.highWatermark);
    perPartition('kavka_partition_size_bytes', 'Bytes of segment files.', (p) => p.log.sizeBytes);
    perPartition('kavka_partition_segments', 'Segment count.', (p) => p.log.segmentCount);
    perPartition('kavka_partition_in_sync_replicas', 'ISR size (leader only).', (p) => p.image.isr.length, true);
    perPartition('kavka_partition_under_replicated', '1 when the ISR is smaller than the replica set (leader only).', (p) => (p.image.isr.length < p.image.replicas.length ? 1 : 0), true);
    perPartition('kavka_partition_write_failures_tolerated', 'More failures acks=all writes survive now: min(|ISR| - min.insync.replicas, live voters - quorum) (leader only).', (p) => failuresTolerated(p).write, true);
    perPartition('kavka_partition_data_failures_tolerated', 'More failures acknowledged data survives now: min(|ISR| - 1, live voters - quorum) (leader only).', (p) => failuresTolerated(p).data, true);
    const counted = (name: string, help: string, read: (counts: ReplicaManager['counts']) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const counts = replicaManager()?.counts;
          this.reset();
          if (counts !== undefined) this.inc(read(counts));
        },
      });
    counted('kavka_leader_elections_total', 'Times this node became the leader of a partition (a leader election it won, including preferred-leader moves).', (c) => c.leaderships);
    counted('kavka_isr_shrinks_total', 'ISR shrinks this node made as leader (a follower fell behind or was fenced).', (c) => c.isrShrinks);
    counted('kavka_isr_expands_total', 'ISR expansions this node made as leader (a follower caught up).', (c) => c.isrExpands);
    new Gauge({
      name: 'kavka_under_replicated_partitions',
      help: 'Partitions this node leads whose ISR is smaller than their replica set.',
      registers,
      collect() {
        this.set((replicaManager()?.allPartitions() ?? []).filter((p) => p.isLeader && p.image.isr.length < p.image.replicas.length).length);
      },
    });
    new Gauge({
      name: 'kavka_partitions_offline',
      help: 'Partitions this node should hold but could not open (see the error log).',
      registers,
      collect() {
        this.set(replicaManager()?.offlinePartitions().size ?? 0);
      },
    });
    new Gauge({
      name: 'kavka_log_dir_offline',
      help: '1 while the log dir is offline after a write or fsync error or a corrupt batch (until a probe works and it is reopened).',
      registers,
      collect() {
        this.set(logDir().state.kind === 'offline' ? 1 : 0);
      },
    });
    new Counter({
      name: 'kavka_log_dir_failures_total',
      help: 'Times the log dir went offline (a write or fsync error, or a corrupt batch found while serving).',
      registers,
      collect() {
        this.reset();
        this.inc(logDir().failures);
      },
    });
    new Counter({
      name: 'kavka_log_corruption_repairs_total',
      help: 'Partitions opened with a corrupt batch repaired: segment kept as .log.corrupt, log truncated to the batch, re-fetched from the leader.',
      registers,
      collect() {
        this.reset();
        this.inc(logDir().corruptionRepairs);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'kavka_process_' });
  }
}
