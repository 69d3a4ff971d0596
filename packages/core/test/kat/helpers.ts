/**
 * Shared helpers for the known-answer tests: loading the vectors that live
 * beside the repository (`<repo>/../shared/vectors/`), hex, Wycheproof
 * shapes and naming, and a seeded PRNG for reproducible random cases.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromHex, toHex } from '../../src/bytes.js';

/** `<repo>/../shared/vectors/`: resolved from this file, never from an absolute path. */
export const VECTORS_DIR = new URL('../../../../../shared/vectors/', import.meta.url);

export function loadJson<T>(relativePath: string): T {
  return JSON.parse(readFileSync(new URL(relativePath, VECTORS_DIR), 'utf8')) as T;
}

export const hex = fromHex;
export { toHex };

/** Byte equality through hex, so a failure prints both values. */
export function assertBytes(actual: Uint8Array | null | undefined, expectedHex: string, what: string): void {
  assert.ok(actual, `${what}: expected ${expectedHex.length / 2} bytes, got ${String(actual)}`);
  assert.equal(toHex(actual), expectedHex.toLowerCase(), what);
}

/** Runs `fn`; true when it threw or returned null/false (i.e. the operation was refused). */
export async function refused(fn: () => unknown): Promise<boolean> {
  try {
    const r = await fn();
    return r === null || r === false;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------
// Wycheproof (testvectors_v1)

export type WycheproofResult = 'valid' | 'invalid' | 'acceptable';

export interface WycheproofTest {
  tcId: number;
  comment?: string;
  /** Absent in some files (e.g. ML-KEM keygen_seed). */
  flags?: string[];
  result: WycheproofResult;
}

export interface WycheproofGroup<T extends WycheproofTest> {
  type: string;
  tests: T[];
}

export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  notes?: Record<string, { bugType?: string; description?: string }>;
  testGroups: G[];
}

export function loadWycheproof<G>(file: string): WycheproofFile<G> {
  return loadJson<WycheproofFile<G>>(`wycheproof/${file}`);
}

/** `tcId 12: comment [valid; Flag1,Flag2]`, optionally with a suffix (e.g. a skip reason). */
export function flagsOf(t: WycheproofTest): string[] {
  return t.flags ?? [];
}

export function caseName(t: WycheproofTest, suffix?: string): string {
  const comment = t.comment ? `: ${t.comment}` : '';
  const flags = t.flags?.length ? `; ${t.flags.join(',')}` : '';
  return `tcId ${t.tcId}${comment} [${t.result}${flags}]${suffix ? ` ${suffix}` : ''}`;
}

/** Total number of tests in a Wycheproof file (to check that every vector got its own test). */
export function countTests<T extends WycheproofTest>(f: WycheproofFile<WycheproofGroup<T>>): number {
  return f.testGroups.reduce((n, g) => n + g.tests.length, 0);
}

// ---------------------------------------------------------------------------
// HPKE vectors (RFC 9180 / draft-ietf-hpke-pq JSON layout)

export interface HpkeEncryption { aad: string; ct: string; nonce: string; pt: string }
export interface HpkeExport { exporter_context: string; L: number; exported_value: string }
export interface HpkeVector {
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmR: string;
  ikmE: string;
  skRm: string;
  skEm?: string;
  pkRm: string;
  pkEm?: string;
  enc: string;
  shared_secret: string;
  key_schedule_context?: string;
  suite_id?: string;
  secret?: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  encryptions: HpkeEncryption[];
  exports: HpkeExport[];
  psk?: string;
  psk_id?: string;
  skSm?: string;
  pkSm?: string;
}

export const HPKE_MODES: Record<number, string> = { 0: 'base', 1: 'psk', 2: 'auth', 3: 'auth_psk' };
export const HPKE_AEADS: Record<number, string> = {
  1: 'AES-128-GCM', 2: 'AES-256-GCM', 3: 'ChaCha20Poly1305', 0xffff: 'Export-only',
};
export const HPKE_KDFS: Record<number, string> = {
  1: 'HKDF-SHA256', 2: 'HKDF-SHA384', 3: 'HKDF-SHA512',
  0x10: 'SHAKE128', 0x11: 'SHAKE256', 0x12: 'TurboSHAKE128', 0x13: 'TurboSHAKE256',
};
export const HPKE_KEMS: Record<number, string> = {
  0x10: 'DHKEM(P-256, HKDF-SHA256)', 0x11: 'DHKEM(P-384, HKDF-SHA384)',
  0x20: 'DHKEM(X25519, HKDF-SHA256)', 0x21: 'DHKEM(X448, HKDF-SHA512)',
  0x40: 'ML-KEM-512', 0x41: 'ML-KEM-768', 0x42: 'ML-KEM-1024',
  0x50: 'MLKEM768-P256', 0x51: 'MLKEM1024-P384', 0x647a: 'X-Wing (MLKEM768-X25519)',
};

const hx = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
export function suiteName(v: HpkeVector): string {
  return `mode ${v.mode} (${HPKE_MODES[v.mode] ?? '?'}), kem ${hx(v.kem_id)} ${HPKE_KEMS[v.kem_id] ?? '?'}, ` +
    `kdf ${hx(v.kdf_id)} ${HPKE_KDFS[v.kdf_id] ?? '?'}, aead ${hx(v.aead_id)} ${HPKE_AEADS[v.aead_id] ?? '?'}`;
}

// ---------------------------------------------------------------------------
// Reproducible randomness for cross tests: sfc32 seeded from KAT_SEED (or a random seed, printed in the suite name).

export function makeRng(seed: number): { int(maxExclusive: number): number; bytes(n: number): Uint8Array } {
  let a = 0x9e3779b9 ^ seed, b = 0x243f6a88, c = 0xb7e15162 ^ (seed >>> 16), d = 1;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 16; i++) next();
  return {
    int: (maxExclusive) => next() % maxExclusive,
    bytes(n) {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = next() & 0xff;
      return out;
    },
  };
}

export function katSeed(): number {
  const env = process.env.KAT_SEED;
  return env !== undefined && /^\d+$/.test(env) ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}
