/**
 * Shared test helpers: where the vectors are, and byte conversions.
 * The vectors live in `shared/vectors/` beside the repository (CI clones the
 * repository elsewhere with `shared/` next to it), so resolve them relative to
 * this file, never by absolute path.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TlogError, type TlogErrorCode } from '../src/index.js';

export const VECTORS = new URL('../../../../shared/vectors/', import.meta.url);

/** Parses a JSON vector file under shared/vectors/. */
export function readVector<T>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, VECTORS), 'utf8')) as T;
}

/** Every `.json` file under a vector folder, as paths relative to that folder, sorted. */
export function listJson(dir: string): string[] {
  const root = fileURLToPath(new URL(dir.endsWith('/') ? dir : dir + '/', VECTORS));
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(root + rel).sort()) {
      const p = rel + name;
      if (statSync(root + p).isDirectory()) walk(p + '/');
      else if (name.endsWith('.json')) out.push(p);
    }
  };
  walk('');
  return out;
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Asserts that `fn` throws a TlogError, with `code` when given; returns the error. */
export function throwsTlog(fn: () => unknown, code?: TlogErrorCode | readonly TlogErrorCode[]): TlogError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TlogError, `expected a TlogError, got ${String(e)}`);
    if (code !== undefined) {
      const codes = typeof code === 'string' ? [code] : code;
      assert.ok(codes.includes(e.code), `expected ${codes.join(' or ')}, got ${e.code}: ${e.message}`);
    }
    return e;
  }
  assert.fail(`expected a TlogError${code === undefined ? '' : ` (${String(code)})`}, nothing was thrown`);
}

/** A copy of `b` with one bit flipped. */
export function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const c = b.slice();
  const i = Math.floor(bit / 8) % c.length;
  c[i]! ^= 1 << (bit % 8);
  return c;
}

/** `n` distinct leaf inputs derived from `seed` (hash them with leafHash). */
export function makeLeafData(n: number, seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(utf8(`leaf ${seed} ${i}`));
  return out;
}

// --- vector file shapes ----------------------------------------------------------

/** A case of checkpoint/signed-notes.json. */
export interface SignedNoteCase {
  name: string;
  verifier_key?: string;
  verifier_keys?: string[];
  note: string;
  signed_message: string;
  key_name?: string;
  key_id?: string;
  key_id_recomputed?: string;
  public_key_hex?: string;
  signatures: { key_name: string; key_id: string; signature_hex?: string; ed25519_verifies: boolean | null }[];
  signer_key?: string;
  signer_seed_hex?: string;
}

/** A case of checkpoint/spec-examples-unkeyed.json. */
export interface UnkeyedCase {
  name: string;
  note: string;
  parsed: {
    text?: string;
    origin?: string;
    tree_size?: number;
    root_hash_hex?: string;
    extension_lines?: string[];
    signatures: { key_name: string; key_id: string; signature_length?: number; timestamp?: number }[];
  };
  cosigned_message?: string;
}

/** checkpoint/cosignature-v1-constructed.json. */
export interface CosignatureVector {
  construction: { cosigner_private_key: string };
  cosigner_name: string;
  seed_hex: string;
  public_key_hex: string;
  vkey_type01_upstream: string;
  vkey_type04_cosignature: string;
  key_id_type04: string;
  checkpoint_body: string;
  timestamp: number;
  signed_message: string;
  signature_hex: string;
  cosignature_line: string;
  cosigned_note: string;
  must_fail: { what: string; line?: string }[];
}

/** Strips ASCII control characters (U+0000–U+001F). */
export function stripControls(s: string): string {
  return [...s].filter((ch) => ch.charCodeAt(0) >= 0x20).join('');
}

/** True when `s` has an ASCII control character (U+0000–U+001F). */
export function hasControl(s: string): boolean {
  return [...s].some((ch) => ch.charCodeAt(0) < 0x20);
}
