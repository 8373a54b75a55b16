// Java-properties text as Kafka writes meta.properties: `key=value` lines, `#` or `!` comments.
// Only what Kavka's own files need: no escapes, no line continuations.

/** Parses `key=value` lines (also `key: value`); later keys win. Returns undefined for a line that is neither a pair nor a comment. */
export function parseProperties(text: string): Map<string, string> | undefined {
  const result = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const separator = line.search(/[=:]/);
    if (separator <= 0) return undefined;
    result.set(line.slice(0, separator).trim(), line.slice(separator + 1).trim());
  }
  return result;
}

export function formatProperties(entries: [string, string][], comment?: string): Buffer {
  const lines = comment === undefined ? [] : [`# ${comment}`];
  for (const [key, value] of entries) lines.push(`${key}=${value}`);
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}
