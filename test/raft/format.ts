// Compact, deterministic text for Raft values, used by the transcripts and by simulation failure
// reports. Entries print as index@term followed by the payload: `3@2 "x"`, `1@1 noop`,
// `4@2 conf:add-voter(4)`.

import { formatConfig, type Entry, type HardState, type Message, type Ready, type Snapshot } from '../../src/raft/index.js';

const decoder = new TextDecoder();

export function formatEntry(entry: Entry): string {
  const p = entry.payload;
  switch (p.kind) {
    case 'normal':
      return `${entry.index}@${entry.term} ${JSON.stringify(decoder.decode(p.data))}`;
    case 'noop':
      return `${entry.index}@${entry.term} noop`;
    case 'config':
      return `${entry.index}@${entry.term} conf:${p.change.type}(${p.change.nodeId})`;
  }
}

export function formatEntries(entries: readonly Entry[]): string {
  return entries.map(formatEntry).join(', ');
}

export function formatHardState(hs: HardState): string {
  return `term=${hs.term} vote=${hs.votedFor ?? '-'} commit=${hs.commit}`;
}

export function formatSnapshot(snapshot: Snapshot): string {
  const m = snapshot.metadata;
  return `${m.index}@${m.term} ${formatConfig(m.config)} data=${snapshot.data.length}B`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to}`;
  switch (m.type) {
    case 'append': {
      const entries = m.entries.length > 0 ? ` [${formatEntries(m.entries)}]` : '';
      return `${head} append t${m.term} prev=${m.prevIndex}@${m.prevTerm} commit=${m.commit}${entries}`;
    }
    case 'append-response':
      if (!m.reject) return `${head} append-response t${m.term} ok index=${m.index}`;
      return `${head} append-response t${m.term} reject index=${m.index} hint=${m.conflictTerm === 0 ? `short,next=${m.conflictIndex}` : `term ${m.conflictTerm} from ${m.conflictIndex}`}${m.rejoining === true ? ' rejoining' : ''}`;
    case 'heartbeat':
      return `${head} heartbeat t${m.term} commit=${m.commit}`;
    case 'heartbeat-response':
      return `${head} heartbeat-response t${m.term}${m.rejoining === undefined ? '' : ` rejoining last=${m.rejoining.lastIndex}`}`;
    case 'vote':
      return `${head} ${m.preVote ? 'pre-vote' : 'vote'} t${m.term} last=${m.lastIndex}@${m.lastTerm}${m.transfer ? ' transfer' : ''}`;
    case 'vote-response':
      return `${head} ${m.preVote ? 'pre-vote' : 'vote'}-response t${m.term} ${m.granted ? 'granted' : 'rejected'}`;
    case 'install-snapshot':
      return `${head} install-snapshot t${m.term} snapshot=${formatSnapshot(m.snapshot)}`;
    case 'timeout-now':
      return `${head} timeout-now t${m.term}`;
  }
}

/** The Ready, one field per line, in processing order; `softState` only when it changed. */
export function formatReady(rd: Ready, softStateChanged: boolean): string[] {
  const lines: string[] = [];
  if (softStateChanged) {
    lines.push(`SoftState: ${rd.softState.role} term=${rd.softState.term} leader=${rd.softState.leaderId ?? '-'}`);
  }
  if (rd.hardState !== undefined) lines.push(`HardState ${formatHardState(rd.hardState)}`);
  if (rd.snapshot !== undefined) lines.push(`Snapshot ${formatSnapshot(rd.snapshot)}`);
  if (rd.truncateFrom !== undefined) lines.push(`Truncate from ${rd.truncateFrom}`);
  if (rd.entries.length > 0) lines.push(`Entries: ${formatEntries(rd.entries)}`);
  if (rd.messages.length > 0) {
    lines.push('Messages:');
    for (const m of rd.messages) lines.push(`  ${formatMessage(m)}`);
  }
  if (rd.committedEntries.length > 0) lines.push(`Committed: ${formatEntries(rd.committedEntries)}`);
  return lines;
}
