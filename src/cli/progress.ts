// A one-line progress bar on stderr for long produce and consume runs, drawn only when stderr is
// a terminal (never into a log file or a pipe). Redrawn at most every 100 ms. The text is built
// by a pure function so it can be tested.

export interface ProgressState {
  label: string;
  done: number;
  /** Undefined when the total is unknown (reading stdin): no bar, only counts. */
  total: number | undefined;
  unit: 'messages' | 'bytes';
  elapsedMs: number;
}

function human(value: number, unit: ProgressState['unit']): string {
  if (unit === 'messages') return value >= 10_000 ? `${(value / 1000).toFixed(1)}k` : String(value);
  if (value >= 1024 * 1024 * 1024) return `${(value / 1024 / 1024 / 1024).toFixed(2)} GiB`;
  if (value >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  if (value >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${value} B`;
}

export function renderProgress(state: ProgressState, width: number): string {
  const rate = state.elapsedMs > 0 ? (state.done * 1000) / state.elapsedMs : 0;
  const rateText = `${human(Math.round(rate), state.unit)}/s`;
  if (state.total === undefined || state.total <= 0) return `${state.label} ${human(state.done, state.unit)} ${state.unit === 'bytes' ? '' : 'msgs '}${rateText}`.replace(/\s+/g, ' ');
  const fraction = Math.min(1, state.done / state.total);
  const barWidth = Math.max(10, Math.min(40, width - 50));
  const filled = Math.round(fraction * barWidth);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}`;
  return `${state.label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${human(state.done, state.unit)}/${human(state.total, state.unit)} ${rateText}`;
}

export class ProgressBar {
  private lastDrawMs = -Infinity;
  private drawn = false;
  private readonly startedMs: number;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly enabled: boolean,
    private readonly label: string,
    private readonly unit: ProgressState['unit'],
    private total: number | undefined,
    private readonly nowMs: () => number,
  ) {
    this.startedMs = nowMs();
  }

  setTotal(total: number | undefined): void {
    this.total = total;
  }

  update(done: number, force = false): void {
    if (!this.enabled) return;
    const now = this.nowMs();
    if (!force && now - this.lastDrawMs < 100) return;
    this.lastDrawMs = now;
    const columns = this.stream.columns > 0 ? this.stream.columns : 80;
    const line = renderProgress({ label: this.label, done, total: this.total, unit: this.unit, elapsedMs: now - this.startedMs }, columns);
    this.stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line so later stderr output starts clean. */
  finish(): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
