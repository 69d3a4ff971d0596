/**
 * Redaction of sensitive values in audit event details: encryption-context
 * values, client addresses, token ids. Each value at a sensitive path is
 * replaced by `hmac-sha256:v<N>:<hex>`, the HMAC-SHA256 under version N of the
 * namespace's audit HMAC key. The key lives in the keyholder; this module only
 * builds the messages and places the results, so `hmac` is supplied by the
 * caller (the keyholder client in the server, {@link localHmacKey} in tests).
 *
 * Same value, same key version → same marker, so an investigator holding the
 * key can still ask "which events involve this address?" without the log
 * revealing addresses to whoever reads it. The message is
 * `"keyward/v1 audit-redact\n" ‖ canonicalJson(value)`, so the string "1" and
 * the number 1 differ and the key is never used for anything else by accident.
 */
import { createHmac } from 'node:crypto';
import { HEX64, utf8 } from './bytes.js';
import { canonicalJson, type JsonObject, type JsonValue } from './canonical-json.js';
import { check } from './errors.js';

/** Domain-separation prefix of every redaction HMAC message. */
export const REDACT_LABEL = 'keyward/v1 audit-redact\n';

/** A redacted value: `hmac-sha256:v<version>:<64 hex>`. */
export const REDACTED_RE = /^hmac-sha256:v([1-9][0-9]{0,15}):([0-9a-f]{64})$/;

/**
 * The paths the key service treats as sensitive in `details`: every
 * encryption-context value, client addresses, token ids.
 */
export const DEFAULT_SENSITIVE_PATHS: readonly string[] = Object.freeze(['context.*', 'client.address', 'client.addresses.*', 'token_id', 'token.id']);

/** One version of a namespace's audit HMAC key, held by the keyholder. */
export interface HmacKey {
  /** The key version (integer ≥ 1); written into each marker and the event's `hmac_key_version`. */
  readonly version: number;
  /** HMAC-SHA256 of `message` under this key version, as 64 lower-case hex digits. */
  readonly hmac: (message: Uint8Array) => string | Promise<string>;
}

/**
 * The exact bytes that are MACed for `value`.
 *
 * @example
 * redactionMessage('10.0.0.7') // "keyward/v1 audit-redact\n\"10.0.0.7\"" as UTF-8
 */
export function redactionMessage(value: JsonValue): Uint8Array {
  return utf8.encode(REDACT_LABEL + canonicalJson(value));
}

/**
 * An {@link HmacKey} over raw key bytes with node:crypto — what the keyholder
 * runs for a namespace key version, and what tests use.
 *
 * @example
 * const key = localHmacKey(3, keyBytes);
 * const { details } = await redact({ client: { address: '10.0.0.7' } }, DEFAULT_SENSITIVE_PATHS, key);
 */
export function localHmacKey(version: number, key: Uint8Array): HmacKey {
  check(Number.isSafeInteger(version) && version >= 1, 'HMAC key version must be an integer ≥ 1');
  check(key instanceof Uint8Array && key.length >= 32, 'HMAC key must be at least 32 bytes');
  const k = Uint8Array.from(key);
  return Object.freeze({ version, hmac: (message: Uint8Array) => createHmac('sha256', k).update(message).digest('hex') });
}

function parsePath(p: string): string[] {
  check(typeof p === 'string' && p.length > 0 && p.length <= 256, 'a sensitive path must be a non-empty string');
  const segs = p.split('.');
  check(segs.every((s) => s.length > 0), `sensitive path ${JSON.stringify(p)} has an empty segment`);
  return segs;
}

type Slot = { parent: Record<string, JsonValue> | JsonValue[]; key: string | number };

function collect(node: JsonValue, segs: readonly string[], i: number, out: Slot[]): void {
  if (node === null || typeof node !== 'object') return;
  const seg = segs[i]!;
  const last = i === segs.length - 1;
  const visit = (parent: Slot['parent'], key: string | number, child: JsonValue): void => {
    if (last) out.push({ parent, key });
    else collect(child, segs, i + 1, out);
  };
  if (Array.isArray(node)) {
    const arr = node as JsonValue[];
    if (seg === '*') arr.forEach((c, k) => visit(arr, k, c));
    else if (/^(0|[1-9][0-9]*)$/.test(seg) && Number(seg) < arr.length) visit(arr, Number(seg), arr[Number(seg)]!);
    return;
  }
  const obj = node as Record<string, JsonValue>;
  if (seg === '*') for (const k of Object.keys(obj)) visit(obj, k, obj[k]!);
  else if (Object.prototype.hasOwnProperty.call(obj, seg)) visit(obj, seg, obj[seg]!);
}

/**
 * Returns a copy of `details` in which every non-null value at one of
 * `sensitivePaths` is replaced by its marker `hmac-sha256:v<N>:<hex>`, and the
 * key version to record as the event's `hmac_key_version` (null when nothing
 * was replaced). Paths are dot-separated keys; `*` matches every key of an
 * object or every element of an array; a value that is an object or array is
 * replaced whole. `details` itself is not changed. Redact once: a value that
 * already looks like a marker is MACed again, never trusted.
 *
 * Throws `KW_INVALID_ARGUMENT` for details outside plain JSON, bad paths, or an
 * `hmac` that does not return 64 lower-case hex digits.
 *
 * @example
 * const { details, hmac_key_version } = await redact(
 *   { context: { tenant: 'acme' }, client: { address: '203.0.113.9' } },
 *   DEFAULT_SENSITIVE_PATHS,
 *   key,
 * ); // details.context.tenant === 'hmac-sha256:v3:…'
 */
export async function redact(
  details: JsonObject,
  sensitivePaths: readonly string[],
  key: HmacKey,
): Promise<{ details: JsonObject; hmac_key_version: number | null }> {
  check(typeof details === 'object' && details !== null && !Array.isArray(details), 'details must be a plain JSON object');
  const paths: unknown = sensitivePaths;
  check(Array.isArray(paths), 'sensitivePaths must be an array of paths');
  check(typeof key === 'object' && key !== null && typeof key.hmac === 'function', 'key must be an HmacKey');
  check(Number.isSafeInteger(key.version) && key.version >= 1, 'HMAC key version must be an integer ≥ 1');
  const copy = JSON.parse(canonicalJson(details)) as Record<string, JsonValue>; // validates and deep-copies
  const slots: Slot[] = [];
  for (const p of sensitivePaths) collect(copy, parsePath(p), 0, slots);
  // A slot reached by two paths is replaced once. Messages are built from the
  // original values before any replacement, so an enclosing object replaced
  // whole is MACed as it was.
  const pending: { slot: Slot; value: JsonValue }[] = [];
  for (const slot of slots) {
    const value = (slot.parent as Record<string | number, JsonValue>)[slot.key]!;
    if (value === null) continue;
    if (pending.some((p) => p.slot.parent === slot.parent && p.slot.key === slot.key)) continue;
    pending.push({ slot, value });
  }
  const macs = await Promise.all(pending.map(async ({ value }) => key.hmac(redactionMessage(value))));
  macs.forEach((mac, i) => {
    check(typeof mac === 'string' && HEX64.test(mac), 'the HMAC function must return 64 lower-case hex digits');
    const { slot } = pending[i]!;
    (slot.parent as Record<string | number, JsonValue>)[slot.key] = `hmac-sha256:v${key.version}:${mac}`;
  });
  return { details: copy, hmac_key_version: pending.length > 0 ? key.version : null };
}
