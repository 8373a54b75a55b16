// Runs the Raft transcripts in test/raft/testdata/*.txt (see interaction-env.ts for the commands).
// KAVKA_REWRITE_TRANSCRIPTS=1 regenerates the expected outputs instead of checking them; review
// the diff before committing.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readDataDriven, writeDataDriven } from './datadriven.js';
import { InteractionEnv } from './interaction-env.js';

const testdata = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');
const rewrite = process.env.KAVKA_REWRITE_TRANSCRIPTS === '1';

describe('Raft transcripts', () => {
  for (const file of readdirSync(testdata).filter((f) => f.endsWith('.txt')).sort()) {
    it(`replays ${file}`, () => {
      const path = join(testdata, file);
      const cases = readDataDriven(path);
      const env = new InteractionEnv();
      const actual: string[] = [];
      for (const c of cases) {
        let output: string;
        try {
          output = env.run(c.command);
        } catch (err) {
          throw new Error(`${file}:${c.line}: ${c.command}: ${(err as Error).stack ?? String(err)}`);
        }
        actual.push(output);
        if (!rewrite) expect(output, `${file}:${c.line}: ${c.command}`).toBe(c.expected);
      }
      if (rewrite) writeDataDriven(path, cases, actual);
    });
  }
});
