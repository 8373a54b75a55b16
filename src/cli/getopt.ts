// POSIX getopt for kcat-style short options, with GNU argument permutation (options may follow
// positional arguments, as kcat accepts `-P -t x -l file.txt`). Pure.
//
// `spec` lists option letters; a letter followed by ':' takes an argument, given either joined
// (`-tfoo`) or as the next word (`-t foo`). Flags bundle (`-Ce` = `-C -e`). `--` ends options.
import { CliError } from './cli-error.js';

export interface ParsedOption {
  letter: string;
  value: string | undefined;
}

export interface GetoptResult {
  options: ParsedOption[];
  positionals: string[];
}

export function getopt(argv: readonly string[], spec: string): GetoptResult {
  const takesValue = new Map<string, boolean>();
  for (let i = 0; i < spec.length; i++) {
    const letter = spec[i];
    if (letter === ':') continue;
    takesValue.set(letter, spec[i + 1] === ':');
  }
  const options: ParsedOption[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word);
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const letter = word[j];
      const withValue = takesValue.get(letter);
      if (withValue === undefined) throw new CliError(`unknown option -${letter}`, { usage: true });
      if (!withValue) {
        options.push({ letter, value: undefined });
        continue;
      }
      let value: string | undefined = word.slice(j + 1);
      if (value.length === 0) {
        value = argv[++i];
        if (value === undefined) throw new CliError(`option -${letter} needs a value`, { usage: true });
      }
      options.push({ letter, value });
      break;
    }
  }
  return { options, positionals };
}

/** Long options (`--name value` or `--name=value`) and short aliases, for the topic command. */
export interface LongOptionSpec {
  name: string;
  alias?: string;
  takesValue: boolean;
  repeatable?: boolean;
}

export interface LongParseResult {
  values: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
}

export function parseLongOptions(argv: readonly string[], specs: readonly LongOptionSpec[]): LongParseResult {
  const byName = new Map<string, LongOptionSpec>();
  for (const spec of specs) {
    byName.set(`--${spec.name}`, spec);
    if (spec.alias !== undefined) byName.set(spec.alias, spec);
  }
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word);
      continue;
    }
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const name = eq >= 0 ? word.slice(0, eq) : word;
    const spec = byName.get(name);
    if (spec === undefined) throw new CliError(`unknown option ${name}`, { usage: true });
    if (!spec.takesValue) {
      if (eq >= 0) throw new CliError(`option ${name} takes no value`, { usage: true });
      flags.add(spec.name);
      continue;
    }
    const value: string | undefined = eq >= 0 ? word.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new CliError(`option ${name} needs a value`, { usage: true });
    if (eq < 0 && value.startsWith('--')) throw new CliError(`option ${name} needs a value, got ${value}`, { usage: true });
    const list = values.get(spec.name) ?? [];
    if (list.length > 0 && spec.repeatable !== true) throw new CliError(`option --${spec.name} given twice`, { usage: true });
    list.push(value);
    values.set(spec.name, list);
  }
  return { values, flags, positionals };
}
