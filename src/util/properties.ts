// Java-properties text as Kafka writes it (server.properties, meta.properties): `key=value` or
// `key: value` lines, `#` or `!` comments. No escapes and no line continuations.

/** Parses the lines; later keys win. Returns the first line that is neither a pair nor a comment as `badLine`. */
export function readProperties(text: string): { properties: Map<string, string> } | { badLine: string } {
  const properties = new Map<string, string>();
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    const separator = line.search(/[=:]/);
    if (separator <= 0) return { badLine: rawLine };
    properties.set(line.slice(0, separator).trim(), line.slice(separator + 1).trim());
  }
  return { properties };
}

/** Parses the lines; undefined when a line is neither a pair nor a comment. */
export function parseProperties(text: string): Map<string, string> | undefined {
  const result = readProperties(text);
  return 'properties' in result ? result.properties : undefined;
}

export function formatProperties(entries: [string, string][], comment?: string): Buffer {
  const lines = comment === undefined ? [] : [`# ${comment}`];
  for (const [key, value] of entries) lines.push(`${key}=${value}`);
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}
