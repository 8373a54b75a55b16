// Producer ids for InitProducerId: this broker hands them out from a block the active
// controller allocated to it (KIP-730), asking for the next block when one runs out. Requests
// that arrive while a block is being fetched wait for it (one fetch at a time).
import { KavkaError } from '../util/errors.js';
import type { ControllerChannel } from './controller-channel.js';
import type { AllocateProducerIdsResponse__Output } from '../gen/kavka/v1/AllocateProducerIdsResponse.js';

/** Largest producer epoch (int16); past it a producer gets a new id. */
const MAX_PRODUCER_EPOCH = 32_767;

export class ProducerIdManager {
  private next = 0n;
  private end = 0n;
  private fetching: Promise<void> | undefined;

  constructor(
    private readonly brokerId: number,
    private readonly channel: ControllerChannel,
  ) {}

  /** A new producer id, or the next epoch of an existing one (KIP-360). */
  async initProducerId(transactionalId: string, producerId: bigint, producerEpoch: number): Promise<{ producerId: bigint; producerEpoch: number }> {
    if (transactionalId !== '') throw new KavkaError('UNSUPPORTED_VERSION', 'transactions are not supported; leave transactional_id empty for an idempotent producer');
    if (producerId >= 0n) {
      if (producerEpoch < 0 || producerEpoch > MAX_PRODUCER_EPOCH) throw new KavkaError('INVALID_REQUEST', `producer epoch ${producerEpoch} is out of range 0..${MAX_PRODUCER_EPOCH}`);
      if (producerEpoch < MAX_PRODUCER_EPOCH) return { producerId, producerEpoch: producerEpoch + 1 };
    }
    return { producerId: await this.nextId(), producerEpoch: 0 };
  }

  private async nextId(): Promise<bigint> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.next < this.end) return this.next++;
      this.fetching ??= this.fetchBlock().finally(() => {
        this.fetching = undefined;
      });
      await this.fetching;
    }
    throw new KavkaError('COORDINATOR_NOT_AVAILABLE', 'no producer id block could be obtained from the controller; retry');
  }

  private async fetchBlock(): Promise<void> {
    const { response } = await this.channel.call<AllocateProducerIdsResponse__Output>('AllocateProducerIds', { brokerId: this.brokerId });
    this.next = BigInt(response.producerIdStart);
    this.end = this.next + BigInt(response.producerIdLen);
  }
}
