// What the chaos runner needs from a cluster it injects faults into. Two implementations:
// real `kavka broker` processes on 127.0.0.1 behind fault proxies (process target), and the
// docker-compose cluster (compose target: docker kill / pause / restart / network disconnect).
// Every method acts on one node by its node.id; none of them waits for the cluster to heal.

export type NodeFault =
  | 'kill' // SIGKILL (docker kill): no controlled shutdown, the page cache survives
  | 'stop' // SIGTERM (docker stop): controlled shutdown
  | 'pause' // SIGSTOP (docker pause): the process is frozen, sockets stay open
  | 'resume'; // SIGCONT (docker unpause)

/** Something that happened to a node without a step doing it. */
export interface NodeEvent {
  node: number;
  /** exited: the process ended by itself (crash, or a halt on a failed metadata log); restarted / restart-failed: the supervisor's attempt. */
  kind: 'exited' | 'restarted' | 'restart-failed';
  /** The exit code, for 'exited'. */
  code?: number | null;
  what: string;
}

export interface ChaosTarget {
  /** A short name for reports: 'process' or 'compose'. */
  readonly kind: string;
  /**
   * How much slower this target detects failures than the process target (its
   * broker.session.timeout.ms over 1.5 s); pauses and isolations last this many times longer, so
   * they still outlast the session timeout. Absent = 1.
   */
  readonly timeScale?: number;
  /** Every node id of the cluster, in ascending order. */
  readonly nodeIds: readonly number[];
  /** CLIENT listener addresses (host:port on 127.0.0.1) that workload clients bootstrap from. */
  bootstrap(): string[];
  /** The admin HTTP base URL of a node (for /readyz and /metrics). */
  adminUrl(id: number): string;
  /** Applies a signal-like fault. 'kill' and 'stop' leave the node down until start(). */
  fault(id: number, fault: NodeFault): Promise<void>;
  /** Starts a node that was killed or stopped, with its data dir as it is. */
  start(id: number): Promise<void>;
  /** True while the node's process (container) runs, paused or not. */
  isRunning(id: number): boolean | Promise<boolean>;
  /** Cuts the node off from every other node (and, where the target can, from clients). */
  isolate(id: number): Promise<void>;
  /** Cuts one directed link between two nodes; targets that cannot, throw CHAOS_UNSUPPORTED. */
  cutLink?(from: number, to: number): Promise<void>;
  /** Adds latency to every link into and out of a node; optional. */
  delay?(id: number, ms: number): Promise<void>;
  /** Undoes every isolate/cutLink/delay. */
  heal(): Promise<void>;
  /** Where a node's log lines are, for linking violations to the logs around them. */
  logFile(id: number): string | undefined;
  /** Copies the nodes' logs into `dir` first, for targets whose logs live elsewhere (containers). */
  collectLogs?(dir: string): Promise<unknown>;
  /**
   * What this target can do beyond node signals and isolation (see scenarios.ts Capability);
   * absent = signals and links only. Steps it cannot do are skipped and reported so.
   */
  readonly capabilities?: ReadonlySet<string>;
  /** A node's data dir on this machine (needs 'data-dir'); the node must be stopped to damage it. */
  dataDir?(id: number): string;
  /** A replica's segment files back to back, for the byte comparison. */
  replicaBytes?(id: number, topic: string, partition: number): Promise<Buffer>;
  /**
   * Makes a node's storage writes fail with `errno` (null: succeed again) (needs
   * 'storage-faults'): its log dir's ('log', the default) or its metadata log's ('metadata').
   */
  storageFault?(id: number, errno: string | null, store?: 'log' | 'metadata'): Promise<void>;
  /**
   * Reports nodes that exit by themselves and the target's restarts of them: like docker's
   * restart policy, the process target restarts such a node with backoff (needs 'supervisor').
   */
  watch?(listener: (event: NodeEvent) => void): () => void;
  /**
   * Fills the file system under a node's log dir with a ballast file until writes fail with
   * ENOSPC (needs 'small-disks': the log dir is a small file system of its own); returns the
   * ballast's size in bytes. freeDisk deletes the ballast, so space returns.
   */
  fillDisk?(id: number): Promise<number>;
  freeDisk?(id: number): Promise<void>;
  /** Stops everything the target started (processes, proxies); data stays for inspection. */
  destroy(): Promise<void>;
}
