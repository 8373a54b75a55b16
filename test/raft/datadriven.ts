// A small reader/writer for etcd-style data-driven test files:
//
//   # A paragraph of comments saying what the file tests.
//
//   command arg key=value
//   ----
//   expected output
//   (a blank line ends the output)
//
// Outputs never contain blank lines (the runner prints "ok" for empty output). With rewrite the
// file is regenerated with the actual outputs, comments and commands kept as written.

import { readFileSync, writeFileSync } from 'node:fs';

export interface TestCase {
  /** Comment lines (with their `#`) and blank lines before the command, verbatim. */
  readonly preamble: string[];
  readonly command: string;
  readonly expected: string;
  /** 1-based line of the command, for messages. */
  readonly line: number;
}

export function parseDataDriven(text: string): TestCase[] {
  const lines = text.split('\n');
  const cases: TestCase[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) {
      preamble.push(line);
      i++;
      continue;
    }
    const command = line;
    const commandLine = i + 1;
    i++;
    if (lines[i] !== '----') throw new Error(`line ${i + 1}: expected ---- after command ${JSON.stringify(command)}`);
    i++;
    const output: string[] = [];
    while (i < lines.length && lines[i].trim() !== '') output.push(lines[i++]);
    if (i < lines.length) i++; // the blank line that ends the output
    cases.push({ preamble, command, expected: output.join('\n'), line: commandLine });
    preamble = [];
  }
  return cases;
}

export function writeDataDriven(path: string, cases: readonly TestCase[], actual: readonly string[]): void {
  const out: string[] = [];
  cases.forEach((c, i) => {
    out.push(...c.preamble, c.command, '----', actual[i], '');
  });
  writeFileSync(path, `${out.join('\n').replace(/\n+$/, '')}\n`);
}

export function readDataDriven(path: string): TestCase[] {
  return parseDataDriven(readFileSync(path, 'utf8'));
}
