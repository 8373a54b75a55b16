// Parsing of configuration values (broker and topic keys). A bad value is an INVALID_CONFIG
// KavkaError whose message names the key and says what was expected.
import { KavkaError } from './errors.js';

export type ConfigValue = string | number | boolean;

export const INT32_MAX = 2_147_483_647;

function fail(key: string, raw: string, expected: string): never {
  throw new KavkaError('INVALID_CONFIG', `config ${key}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string, key: string): number => {
    const trimmed = raw.trim();
    if (!/^-?\d+$/.test(trimmed)) fail(key, raw, `an integer between ${min} and ${max}`);
    const value = Number(trimmed);
    if (!Number.isSafeInteger(value) || value < min || value > max) fail(key, raw, `an integer between ${min} and ${max}`);
    return value;
  };
}

export function parseBoolean(raw: string, key: string): boolean {
  const value = raw.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  return fail(key, raw, 'true or false');
}

export function parseChoice<T extends string>(...choices: T[]) {
  return (raw: string, key: string): T => {
    const value = raw.trim();
    if (!(choices as string[]).includes(value)) fail(key, raw, `one of ${choices.join(', ')}`);
    return value as T;
  };
}

export function parseString(raw: string): string {
  return raw.trim();
}

