// Time is handed in. Only this file (and the drivers that own real timers) read the wall clock,
// so tests can run many nodes against a manual clock.

export interface Clock {
  /** Wall-clock milliseconds since the epoch (record timestamps, retention). */
  nowMs(): number;
  /** Monotonic milliseconds for measuring intervals (latency, timeouts). */
  monotonicMs(): number;
  /** Runs fn after ms milliseconds (of this clock's time); returns a function that cancels it. */
  schedule(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  schedule: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  private wallMs: number;
  private monoMs = 0;
  private pending: { atMs: number; fn: () => void; cancelled: boolean }[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.wallMs = startMs;
  }

  nowMs(): number {
    return this.wallMs;
  }

  monotonicMs(): number {
    return this.monoMs;
  }

  schedule(ms: number, fn: () => void): () => void {
    const entry = { atMs: this.monoMs + Math.max(0, ms), fn, cancelled: false };
    this.pending.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Moves time forward and runs, in time order, everything scheduled up to the new time. */
  advance(ms: number): void {
    const target = this.monoMs + ms;
    for (;;) {
      const due = this.pending.filter((e) => !e.cancelled && e.atMs <= target).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) break;
      this.wallMs += due.atMs - this.monoMs;
      this.monoMs = due.atMs;
      due.cancelled = true;
      due.fn();
    }
    this.pending = this.pending.filter((e) => !e.cancelled);
    this.wallMs += target - this.monoMs;
    this.monoMs = target;
  }
}
