// Measurement phases shared by the benchmarks: a bounded produce load through the client, and
// how its figures are printed.
import { randomBytes } from 'node:crypto';
import type { Kavka, Message } from '../client/index.js';

export interface ProduceOptions {
  records: number;
  seconds: number;
  recordBytes: number;
  batchSizeBytes: number;
  lingerMs: number;
  messagesPerSend: number;
  sendsOutstanding: number;
  acks: -1 | 0 | 1;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface PhaseResult {
  records: number;
  bytes: number;
  seconds: number;
  latenciesMs?: number[];
}

export async function producePhase(kavka: Kavka, topic: string, options: ProduceOptions): Promise<PhaseResult> {
  const producer = kavka.producer({ batchSizeBytes: options.batchSizeBytes, lingerMs: options.lingerMs, acks: options.acks });
  await producer.connect();
  const value = randomBytes(options.recordBytes);
  const messages: Message[] = Array.from({ length: options.messagesPerSend }, () => ({ value }));
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  let queued = 0;
  let acked = 0;
  const outstanding = new Set<Promise<void>>();
  while (queued < options.records && performance.now() < deadline) {
    const count = Math.min(options.messagesPerSend, options.records - queued);
    queued += count;
    const sentAt = performance.now();
    const send: Promise<void> = producer.send({ topic, messages: count === messages.length ? messages : messages.slice(0, count) }).then(() => {
      latencies.push(performance.now() - sentAt);
      acked += count;
    });
    const tracked = send.finally(() => outstanding.delete(tracked));
    outstanding.add(tracked);
    if (outstanding.size >= options.sendsOutstanding) await Promise.race(outstanding);
  }
  await Promise.all(outstanding);
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  return { records: acked, bytes: acked * options.recordBytes, seconds, latenciesMs: latencies.sort((a, b) => a - b) };
}

export function rates(result: PhaseResult): string {
  const msgs = result.records / result.seconds;
  const mb = result.bytes / 1024 / 1024 / result.seconds;
  return `${result.records} records in ${result.seconds.toFixed(2)} s: ${Math.round(msgs).toLocaleString('en-US')} msgs/s, ${mb.toFixed(1)} MB/s`;
}

