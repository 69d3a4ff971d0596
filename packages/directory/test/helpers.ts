/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- vector files are untyped JSON data, checked field by field by the assertions */
/**
 * Shared test helpers. The vectors live in `shared/vectors/` beside the
 * repository, so they are resolved relative to this file.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DirectoryError, type Configuration, type DeploymentMode, type DirectoryErrorCode } from '../src/index.js';

export const VECTORS = new URL('../../../../shared/vectors/', import.meta.url);

/** One vector file of the KEYTRANS interop set. */
export interface KtFile<I = any, E = any> {
  primitive: string;
  draft: string;
  cipher_suite?: number;
  cases: { name: string; input: I; expect: E }[];
}

/** Parses a JSON vector file under shared/vectors/. */
export function readVector<T = any>(path: string): T {
  return JSON.parse(readFileSync(new URL(path, VECTORS), 'utf8')) as T;
}

/** Parses a file of keytrans/. */
export function kt<I = any, E = any>(name: string): KtFile<I, E> {
  return readVector<KtFile<I, E>>(`keytrans/${name}`);
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Asserts `fn` throws a DirectoryError with `code`. */
export function throwsCode(fn: () => unknown, code: DirectoryErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DirectoryError, `expected DirectoryError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** Asserts the promise rejects with a DirectoryError with `code`. */
export async function rejectsCode(p: Promise<unknown>, code: DirectoryErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DirectoryError, `expected DirectoryError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** A prefix node reader over a Map, for building trees in tests. */
export function memoryTree(): { read: (v: Uint8Array) => any; nodes: Map<string, any> } {
  const nodes = new Map<string, any>();
  return { nodes, read: (v: Uint8Array) => nodes.get(toHex(v)) };
}

/** The Configuration a tree-head / tampered case describes. */
export function configOf(i: any): Configuration {
  return {
    cipherSuite: 2,
    mode: i.mode as DeploymentMode,
    signaturePublicKey: hex(i.signature_public_key),
    vrfPublicKey: hex(i.vrf_public_key),
    ...(i.leaf_public_key ? { leafPublicKey: hex(i.leaf_public_key) } : {}),
    ...(i.mode === 3 ? { auditor: { maxAuditorLag: i.max_auditor_lag, auditorStartPos: i.auditor_start_pos, auditorPublicKey: hex(i.auditor_public_key) } } : {}),
    maxAhead: i.max_ahead,
    maxBehind: i.max_behind,
    reasonableMonitoringWindow: i.reasonable_monitoring_window,
  };
}


/** The Configuration a search/monitor vector's log ran with (`maximum_lifetime` 0 = none). */
export function logConfig(i: any): Configuration {
  return {
    cipherSuite: 2,
    mode: i.mode,
    signaturePublicKey: hex(i.signature_public_key),
    vrfPublicKey: hex(i.vrf_public_key),
    maxAhead: i.max_ahead ?? 10000,
    maxBehind: i.max_behind ?? 10000,
    reasonableMonitoringWindow: i.monitoring_window,
    ...(i.maximum_lifetime ? { maximumLifetime: i.maximum_lifetime } : {}),
  };
}

/** The value of `label` at `version` in a vector's mutation list. */
export function valueAt(i: any, label: string, version: number): string | undefined {
  const vals = (i.mutations as any[]).flatMap((m) => (m.add as any[]).filter((a) => a.label === label).map((a) => a.value as string));
  return vals[version];
}

