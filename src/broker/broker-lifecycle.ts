// A broker's session with the active controller (KIP-631): register once per process start with
// a fresh incarnation id, then heartbeat. The broker asks to stay fenced until its own metadata
// has applied the offset of its registration (it has caught up), and only then may it lead.
// A heartbeat rejected with STALE_BROKER_EPOCH (the controller no longer knows this incarnation)
// starts a new registration. At shutdown, one last heartbeat asks to be fenced, so the controller
// moves leadership away before the process exits (controlled shutdown). While the broker's log dir
// is offline each heartbeat lists it (setOfflineLogDirs), which keeps the broker fenced for data.
//
// Runs as one async loop on the event loop; `state` may be read at any time.
import { randomUUID } from 'node:crypto';
import { toKavkaError } from '../util/errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { QuorumController } from '../controller/index.js';
import type { ControllerChannel } from '../server/index.js';
import type { RegisterBrokerResponse__Output } from '../gen/kavka/v1/RegisterBrokerResponse.js';
import type { BrokerHeartbeatResponse__Output } from '../gen/kavka/v1/BrokerHeartbeatResponse.js';

export interface BrokerLifecycleOptions {
  nodeId: number;
  clusterId: string;
  endpoints: { name: string; host: string; port: number }[];
  rack: string | undefined;
  channel: ControllerChannel;
  controller: QuorumController;
  heartbeatIntervalMs: number;
  /**
   * This node's Raft store: its directory id (sent with the registration, so the controller sees
   * a re-created log dir) and whether it is rejoining (sent with heartbeats, so the controller
   * re-adds it as a voter).
   */
  raftStore: () => { directoryId: string | undefined; rejoining: boolean };
  /** Called when the controller's answer changes whether this broker is fenced. */
  onFencedChange?: () => void;
  clock: Clock;
  logger: Logger;
}

export interface LifecycleState {
  /** The metadata offset of this incarnation's registration, once the controller accepted it. */
  registeredOffset: number | undefined;
  /** This node's metadata has reached its registration: its image is current enough to act on. */
  caughtUp: boolean;
  /** The controller's last word on whether this broker is fenced. */
  fenced: boolean;
}

export class BrokerLifecycle {
  readonly incarnationId = randomUUID();
  private registeredOffset: number | undefined;
  private fenced = true;
  private stopped = false;
  private cancelSleep: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  private readonly caughtUpListeners = new Set<() => void>();
  private caughtUpAnnounced = false;
  private offlineLogDirs: readonly string[] = [];

  constructor(private readonly options: BrokerLifecycleOptions) {}

  get state(): LifecycleState {
    return { registeredOffset: this.registeredOffset, caughtUp: this.caughtUp(), fenced: this.fenced };
  }

  /** Called once, when this node's metadata first reaches its registration. */
  onCaughtUp(listener: () => void): void {
    this.caughtUpListeners.add(listener);
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * The log dirs offline now (empty once they are back). The next heartbeat, sent at once, lists
   * them: the controller fences this broker while any is listed and unfences it after.
   */
  setOfflineLogDirs(dirs: readonly string[]): void {
    this.offlineLogDirs = [...dirs];
    this.options.logger.info({ offlineLogDirs: this.offlineLogDirs }, dirs.length > 0 ? 'reporting offline log dirs in heartbeats' : 'no offline log dir to report any more');
    this.wake?.();
  }

  /**
   * Controlled shutdown: asks the controller to fence this broker (its partitions elect other
   * leaders) and stops heartbeating. Bounded by timeoutMs; a controller that cannot be reached
   * fences the broker anyway once its session expires.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelSleep?.();
    this.wake?.();
    await this.loop;
    if (this.registeredOffset === undefined || timeoutMs <= 0) return;
    try {
      await this.options.channel.call<BrokerHeartbeatResponse__Output>('BrokerHeartbeat', this.heartbeatRequest(true), timeoutMs);
      this.options.logger.info('controller fenced this broker for shutdown; its partitions have moved');
    } catch (error) {
      this.options.logger.warn({ err: error }, 'controlled shutdown could not reach the controller; the broker will be fenced when its session expires');
    }
  }

  private caughtUp(): boolean {
    return this.registeredOffset !== undefined && this.options.controller.metadataOffset >= this.registeredOffset;
  }

  private heartbeatRequest(wantShutdown: boolean): object {
    return {
      clusterId: this.options.clusterId,
      brokerId: this.options.nodeId,
      incarnationId: this.incarnationId,
      metadataOffset: String(this.options.controller.metadataOffset),
      wantFence: !this.caughtUp(),
      wantShutdown,
      metadataDirectoryId: this.options.raftStore().directoryId ?? '',
      metadataRejoining: this.options.raftStore().rejoining,
      offlineLogDirs: this.offlineLogDirs,
    };
  }

  private async run(): Promise<void> {
    const { channel, logger, heartbeatIntervalMs } = this.options;
    while (!this.stopped) {
      try {
        if (this.registeredOffset === undefined) {
          const { response } = await channel.call<RegisterBrokerResponse__Output>(
            'RegisterBroker',
            {
              clusterId: this.options.clusterId,
              brokerId: this.options.nodeId,
              incarnationId: this.incarnationId,
              endpoints: this.options.endpoints,
              directoryId: this.options.raftStore().directoryId ?? '',
              ...(this.options.rack === undefined ? {} : { rack: this.options.rack }),
            },
            Math.max(heartbeatIntervalMs, 2000),
          );
          this.registeredOffset = Number(response.registeredOffset);
          logger.info({ incarnationId: this.incarnationId, registeredOffset: this.registeredOffset }, 'registered with the controller');
          this.watchCatchUp();
        } else {
          const { response } = await channel.call<BrokerHeartbeatResponse__Output>('BrokerHeartbeat', this.heartbeatRequest(false), Math.max(heartbeatIntervalMs, 1000));
          const changed = response.isFenced !== this.fenced;
          if (changed) logger.info({ fenced: response.isFenced }, response.isFenced ? 'the controller fenced this broker' : 'the controller unfenced this broker');
          this.fenced = response.isFenced;
          if (changed) this.options.onFencedChange?.();
        }
      } catch (error) {
        const e = toKavkaError(error);
        if (this.stopped) break;
        if (e.code === 'STALE_BROKER_EPOCH') {
          logger.warn({ message: e.message }, 'the controller does not know this incarnation; registering again');
          this.registeredOffset = undefined;
          this.fenced = true;
          this.options.onFencedChange?.();
        } else if (e.retriable) {
          logger.debug({ code: e.code, message: e.message }, 'controller not reachable; retrying');
        } else {
          logger.error({ code: e.code, message: e.message }, 'the controller rejected this broker; retrying');
        }
      }
      // Heartbeat quickly until unfenced, so a starting broker serves as soon as it can.
      await this.sleep(this.fenced || !this.caughtUp() ? Math.min(heartbeatIntervalMs, 100) : heartbeatIntervalMs);
    }
  }

  private watchCatchUp(): void {
    const offset = this.registeredOffset;
    if (offset === undefined || this.caughtUpAnnounced) return;
    void this.options.controller.waitForOffset(offset, 60_000).then((reached) => {
      if (this.stopped || this.caughtUpAnnounced) return;
      if (!reached) {
        this.options.logger.warn({ registeredOffset: offset, metadataOffset: this.options.controller.metadataOffset }, 'metadata has not caught up with this registration yet');
        this.watchCatchUp();
        return;
      }
      this.caughtUpAnnounced = true;
      this.options.logger.info({ metadataOffset: this.options.controller.metadataOffset }, 'metadata caught up');
      for (const listener of this.caughtUpListeners) listener();
      this.wake?.();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.cancelSleep?.();
        resolve();
      };
      this.cancelSleep = this.options.clock.schedule(ms, resolve);
    });
  }
}

