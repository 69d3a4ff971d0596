/**
 * The audit event: its schema (zod, strict) and its canonical byte encoding
 * (RFC 8785). The bytes are what the log stores, what `prev` hashes, and what
 * the Merkle leaf covers: `leafHash(canonicalBytes(event))` (RFC 9162).
 *
 * An event records one request, allowed or denied, or one periodic summary of
 * unauthenticated failures. Sensitive values in `details` are HMACs
 * (`hmac-sha256:v<N>:<hex>`, see redact.ts) and `hmac_key_version` names the
 * key version used. The layout is documented field by field in docs/audit.md.
 */
import { leafHash } from '@keyward/tlog';
import { z } from 'zod';
import { GENESIS_PREV, HEX64, sha256Hex, utf8 } from './bytes.js';
import { canonicalJson, parseCanonicalJson, type JsonObject } from './canonical-json.js';
import { AuditError, check } from './errors.js';

/** Largest canonical event, in bytes (UTF-8). Larger events are refused (`KW_LIMIT_EXCEEDED`). */
export const MAX_EVENT_BYTES = 64 * 1024;

/** The only event format version. */
export const AUDIT_EVENT_VERSION = 1;

export { GENESIS_PREV };

/** How the request was authenticated. */
export const AUTH_KINDS = ['token', 'signature', 'none'] as const;
/** What happened. */
export const OUTCOMES = ['allowed', 'denied', 'error'] as const;

/**
 * Operation names the key service writes (others of the same shape are
 * accepted, so a newer writer's log still verifies).
 */
export const KNOWN_OPS = [
  'keys.create', 'keys.rotate', 'keys.enable', 'keys.disable', 'keys.schedule_deletion', 'keys.cancel_deletion', 'keys.destroy', 'keys.read',
  'keys.import_params', 'keys.import',
  'data.datakey', 'data.unwrap', 'data.rewrap', 'data.encrypt', 'data.decrypt', 'data.sign', 'data.verify', 'data.mac', 'data.open',
  'principals.create', 'principals.update', 'tokens.create', 'tokens.revoke', 'signing_keys.add', 'signing_keys.revoke',
  'policies.put', 'sys.init', 'sys.unseal', 'sys.seal', 'audit.summary', 'audit.export', 'audit.read',
  'keys.release_policy', 'attest.nonce', 'attest.release',
  'sys.recovery_share', 'sys.rekey_start', 'sys.rekey_share', 'sys.rekey_complete', 'sys.rekey_cancel', 'sys.custody_sync',
  'approvals.request', 'approvals.approve', 'approvals.deny', 'approvals.expire', 'approvals.cancel', 'governance.genesis', 'governance.adopt', 'quorum.put', 'approvers.put',
] as const;

const Identifier = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be 1–255 printable ASCII characters without spaces');
const Hex64 = z.string().regex(HEX64, 'must be 64 lower-case hex digits (a SHA-256 hash)');
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** RFC 3339 UTC with milliseconds, exactly as `Date.prototype.toISOString` writes it. */
const Time = z
  .string()
  .regex(TIME_RE, 'must be RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)')
  .refine((s) => {
    const d = new Date(s);
    return !Number.isNaN(d.getTime()) && d.toISOString() === s;
  }, 'is not a real date and time');
const Op = z.string().max(64).regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'must be dotted lower-case words, e.g. keys.rotate');
const Code = z.string().min(1).max(64).regex(/^[A-Z][A-Z0-9_]*$/, 'must be an upper-case error code, e.g. KW_FORBIDDEN');
const Index = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const Target = z.strictObject({ key: Identifier.optional(), version: Version.optional() });
/** A plain JSON object; its contents are checked by the canonical encoder. */
const Details = z.custom<JsonObject>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v) as object | null),
  'must be a plain JSON object',
);

type Consistent = { readonly outcome: string; readonly code: string | null; readonly auth: string; readonly principal: string | null };
/** Adds the cross-field rules shared by the event and its input. */
function consistent<S extends z.ZodType<Consistent>>(s: S): S {
  return s
    .refine((e) => (e.outcome === 'allowed') === (e.code === null), { message: 'code is null exactly when the outcome is allowed', path: ['code'] })
    .refine((e) => (e.auth === 'none') === (e.principal === null), { message: 'principal is null exactly when auth is none', path: ['principal'] });
}

/** The full event, as stored and exported. Unknown fields are refused. */
export const AuditEventSchema = consistent(
  z.strictObject({
    /** Format version, 1. */
    v: z.literal(AUDIT_EVENT_VERSION),
    /** Position in the log, 0-based, gapless. */
    index: Index,
    /** When the log appended it (RFC 3339, UTC, milliseconds). */
    time: Time,
    /** Namespace, or null for operations outside one (sys.*, audit.summary). */
    ns: Identifier.nullable(),
    /** Authenticated principal id, or null when unauthenticated. */
    principal: Identifier.nullable(),
    auth: z.enum(AUTH_KINDS),
    op: Op,
    target: Target,
    outcome: z.enum(OUTCOMES),
    /** Error code when the outcome is not `allowed`, else null. */
    code: Code.nullable(),
    /** Hex SHA-256 of the canonical request, or null (summaries). */
    request: Hex64.nullable(),
    /** Operation-specific facts; sensitive values are HMACs. */
    details: Details,
    /** The HMAC key version used for the redacted values in `details`, or null if none. */
    hmac_key_version: Version.nullable(),
    /** Hex SHA-256 of the previous event's canonical bytes; 64 zeros for event 0. */
    prev: Hex64,
  }),
);

/** A schema-valid audit event. */
export type AuditEvent = z.output<typeof AuditEventSchema>;

/** What a writer supplies: the log fills `v`, `index`, `time` and `prev`. */
export const AuditEventInputSchema = consistent(
  z.strictObject({
    ns: Identifier.nullable(),
    principal: Identifier.nullable(),
    auth: z.enum(AUTH_KINDS),
    op: Op,
    target: Target.default({}),
    outcome: z.enum(OUTCOMES),
    code: Code.nullable().default(null),
    request: Hex64.nullable().default(null),
    details: Details.default({}),
    hmac_key_version: Version.nullable().default(null),
  }),
);

/** The input of `AuditLog.appendEvent` (defaults: target {}, code/request/hmac_key_version null, details {}). */
export type AuditEventInput = z.input<typeof AuditEventInputSchema>;

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
}

/** Drops `undefined` members of `target`, so `{ key: undefined }` means "no key". */
function cleanTarget(t: unknown): unknown {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) return t;
  return Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined));
}

/**
 * The canonical bytes of a complete event (RFC 8785 JSON, UTF-8), after
 * checking it against {@link AuditEventSchema}. Throws `KW_INVALID_ARGUMENT`
 * for an invalid event and `KW_LIMIT_EXCEEDED` above {@link MAX_EVENT_BYTES}.
 *
 * @example
 * const leaf = leafHash(canonicalBytes(event));
 */
export function canonicalBytes(event: AuditEvent): Uint8Array {
  const parsed = AuditEventSchema.safeParse(event);
  if (!parsed.success) throw new AuditError('KW_INVALID_ARGUMENT', `invalid audit event: ${issues(parsed.error)}`);
  const bytes = utf8.encode(canonicalJson(event));
  check(bytes.length <= MAX_EVENT_BYTES, `audit event is ${bytes.length} bytes; the limit is ${MAX_EVENT_BYTES}`, 'KW_LIMIT_EXCEEDED');
  return bytes;
}

/**
 * The hash chain link: hex SHA-256 of an event's canonical bytes, which the
 * next event carries as `prev`.
 *
 * @example
 * next.prev === eventHash(canonicalBytes(event))
 */
export function eventHash(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}

/**
 * The RFC 9162 Merkle leaf hash of an event's canonical bytes.
 *
 * @example
 * verifyInclusion(eventLeafHash(bytes), event.index, cp.size, proof, cp.root);
 */
export function eventLeafHash(bytes: Uint8Array): Uint8Array {
  return leafHash(bytes);
}

/**
 * Completes a writer's input into an event at `index` after the event whose
 * hash is `prev`, and encodes it. Throws `KW_INVALID_ARGUMENT` or
 * `KW_LIMIT_EXCEEDED` and never returns a partial event.
 *
 * @example
 * const { event, bytes } = buildEvent(input, { index: 0, time: new Date(), prev: GENESIS_PREV });
 */
export function buildEvent(input: AuditEventInput, at: { readonly index: number; readonly time: Date; readonly prev: string }): { event: AuditEvent; bytes: Uint8Array } {
  check(typeof input === 'object' && input !== null, 'audit event input must be an object');
  const parsed = AuditEventInputSchema.safeParse({ ...input, target: cleanTarget((input as { target?: unknown }).target) });
  if (!parsed.success) throw new AuditError('KW_INVALID_ARGUMENT', `invalid audit event: ${issues(parsed.error)}`);
  check(at.time instanceof Date && !Number.isNaN(at.time.getTime()), 'time must be a valid Date');
  const event: AuditEvent = { v: AUDIT_EVENT_VERSION, index: at.index, time: at.time.toISOString(), prev: at.prev, ...parsed.data };
  return { event, bytes: canonicalBytes(event) };
}

/**
 * Parses one stored or exported event strictly: at most
 * {@link MAX_EVENT_BYTES}, valid UTF-8, canonical JSON (the text must be
 * exactly what {@link canonicalBytes} writes), schema-valid. Anything else is
 * `KW_AUDIT_MALFORMED`.
 *
 * @example
 * const event = parseEvent(line);
 */
export function parseEvent(input: string | Uint8Array): AuditEvent {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    if (!(input instanceof Uint8Array)) throw new AuditError('KW_AUDIT_MALFORMED', 'an event must be text or bytes');
    if (input.length > MAX_EVENT_BYTES) throw new AuditError('KW_AUDIT_MALFORMED', `event is ${input.length} bytes; the limit is ${MAX_EVENT_BYTES}`);
    try {
      text = utf8.decode(input);
    } catch (e) {
      throw new AuditError('KW_AUDIT_MALFORMED', 'event is not valid UTF-8', { cause: e });
    }
  }
  if (text.length > MAX_EVENT_BYTES || utf8.encode(text).length > MAX_EVENT_BYTES) {
    throw new AuditError('KW_AUDIT_MALFORMED', `event is larger than ${MAX_EVENT_BYTES} bytes`);
  }
  const value = parseCanonicalJson(text);
  const parsed = AuditEventSchema.safeParse(value);
  if (!parsed.success) throw new AuditError('KW_AUDIT_MALFORMED', `not a valid audit event: ${issues(parsed.error)}`);
  return parsed.data;
}
