// The application a test cluster replicates: it remembers every normal entry it applied, so
// checkers can compare nodes index by index. Its snapshot is that list, as JSON.

import { assert } from '../../src/util/assert.js';
import type { Entry, Snapshot } from '../../src/raft/index.js';

export interface AppliedValue {
  readonly index: number;
  readonly term: number;
  readonly value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class TestStateMachine {
  values: AppliedValue[] = [];
  appliedIndex = 0;

  applySnapshot(snapshot: Snapshot): void {
    assert(snapshot.metadata.index >= this.appliedIndex, 'a snapshot never moves the state machine back');
    this.values = snapshot.data.length === 0 ? [] : (JSON.parse(decoder.decode(snapshot.data)) as AppliedValue[]);
    this.appliedIndex = snapshot.metadata.index;
  }

  /** Returns the value applied, if the entry carried one. */
  apply(entry: Entry): AppliedValue | undefined {
    assert(entry.index === this.appliedIndex + 1, `applies ${entry.index} right after ${this.appliedIndex}`);
    this.appliedIndex = entry.index;
    if (entry.payload.kind !== 'normal') return undefined;
    const applied = { index: entry.index, term: entry.term, value: decoder.decode(entry.payload.data) };
    this.values.push(applied);
    return applied;
  }

  snapshotData(): Uint8Array {
    return encoder.encode(JSON.stringify(this.values));
  }
}
