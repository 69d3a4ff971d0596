/** Shared test helpers for the keyholder: typed-error assertions, references, byte flips. */
import assert from 'node:assert/strict';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { isKeywardError, type KeywardErrorCode } from '@keyward/core';
import { isKeyholderError, type KeyholderError, type KeyholderErrorCode } from '../../src/keyholder/errors.js';
import type { VersionRef } from '../../src/keyholder/schemas.js';

/** Awaits `fn` and asserts it fails with a KeyholderError of `code` (and `index`, when given). */
export async function rejectsKh(fn: () => unknown, code: KeyholderErrorCode, index?: number): Promise<KeyholderError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${code}, but it succeeded`);
  assert.ok(isKeyholderError(caught), `expected a KeyholderError ${code}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : typeof caught}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  if (index !== undefined) assert.equal(caught.details.index, index, `expected the error to name share ${index}: ${caught.message}`);
  return caught;
}

/** Asserts `fn` fails with a core KeywardError of `code`. */
export async function rejectsCore(fn: () => unknown, code: KeywardErrorCode): Promise<void> {
  await assert.rejects(async () => { await fn(); }, (e: unknown) => {
    assert.ok(isKeywardError(e), `expected KeywardError ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

export const ref = (over: Partial<VersionRef> = {}): VersionRef => ({ ns: 'billing', key: 'orders', version: 1, type: 'aes256', ...over });

export const randomBytes = (n: number): Uint8Array => Uint8Array.from(nodeRandomBytes(n));

export function flipped(b: Uint8Array, i: number, mask = 0x01): Uint8Array {
  const c = b.slice();
  c[i]! ^= mask;
  return c;
}

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A random subset of `k` of `items`, in random order. */
export function pick<T>(items: readonly T[], k: number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = nodeRandomBytes(1)[0]! % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

/** Every k-subset of 0..n−1. */
export function subsets(n: number, k: number): number[][] {
  if (k === 0) return [[]];
  if (n < k) return [];
  return [...subsets(n - 1, k), ...subsets(n - 1, k - 1).map((s) => [...s, n - 1])];
}
