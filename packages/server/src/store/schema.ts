/**
 * Zod schemas of the store: what a stored row must look like (the SQL
 * representation shared by the SQLite and, later, PostgreSQL backends: times as
 * integer milliseconds since the epoch, booleans as 0/1, JSON as text, bytes as
 * BLOB/BYTEA) and what a caller may pass in. The row and input types of
 * `types.ts` are derived from these, so the contract and the code cannot drift.
 *
 * Every row read from the database goes through {@link parseRow}: an edited or
 * damaged row is a typed `KW_STORE_CORRUPT_ROW`, never a half-valid object.
 * Every argument goes through {@link parseInput}: a bad one is
 * `KW_STORE_INVALID_ARGUMENT` and nothing is written.
 *
 * Only data integrity lives here (types, lengths, which columns go together,
 * the key-version transition table). Who may do what is the API's business.
 */
import { z } from 'zod';
import { StoreError } from './errors.js';

// --- limits --------------------------------------------------------------------

/** Longest identifier (namespace, key name, ids, roles, meta keys), in characters. */
export const MAX_IDENTIFIER_LENGTH = 255;
/** Largest wrapped key blob or public key, in bytes (an X-Wing public key is 1216). */
export const MAX_BLOB_BYTES = 64 * 1024;
/** Largest JSON text (audit event, policy document) or checkpoint note, in characters. */
export const MAX_TEXT_LENGTH = 1024 * 1024;
/** Most audit events one `readAuditEvents` call returns; read longer ranges in pages. */
export const MAX_AUDIT_READ = 10_000;

// --- enumerations and the transition table ---------------------------------------

/** Key types the key service knows. */
export const KEY_TYPES = ['aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256'] as const;
/** Key types whose versions carry a public key (and the symmetric ones carry none). */
export const ASYMMETRIC_KEY_TYPES: ReadonlySet<KeyType> = new Set(['x25519', 'xwing', 'ed25519']);
/** States of a key version. */
export const KEY_VERSION_STATES = ['enabled', 'disabled', 'scheduled_for_deletion', 'destroyed'] as const;
/** Kinds of principal. */
export const PRINCIPAL_KINDS = ['person', 'service'] as const;
/** Request-signing key algorithms (RFC 9421 names). */
export const SIGNING_KEY_ALGS = ['ed25519'] as const;

export const KeyTypeSchema = z.enum(KEY_TYPES);
export const KeyVersionStateSchema = z.enum(KEY_VERSION_STATES);
export const PrincipalKindSchema = z.enum(PRINCIPAL_KINDS);
export const SigningKeyAlgSchema = z.enum(SIGNING_KEY_ALGS);

export type KeyType = z.infer<typeof KeyTypeSchema>;
export type KeyVersionState = z.infer<typeof KeyVersionStateSchema>;
export type PrincipalKind = z.infer<typeof PrincipalKindSchema>;
export type SigningKeyAlg = z.infer<typeof SigningKeyAlgSchema>;

/**
 * The only state changes a key version may make. Self-transitions are not in
 * the table (changing nothing is refused, so a caller learns its view was stale).
 * `destroyed` is terminal; destruction is reachable only through
 * `scheduled_for_deletion`, whose cancellation returns the version to `disabled`.
 * The v2 migration installs the same table as a trigger, so raw SQL is held to it too.
 */
export const KEY_VERSION_TRANSITIONS: Readonly<Record<KeyVersionState, readonly KeyVersionState[]>> = {
  enabled: ['disabled', 'scheduled_for_deletion'],
  disabled: ['enabled', 'scheduled_for_deletion'],
  scheduled_for_deletion: ['disabled', 'destroyed'],
  destroyed: [],
};

/** True when a key version may go from `from` to `to`. */
export function isAllowedTransition(from: KeyVersionState, to: KeyVersionState): boolean {
  return KEY_VERSION_TRANSITIONS[from].includes(to);
}

// --- primitives ------------------------------------------------------------------

/** Printable ASCII without spaces: names that compare byte-for-byte, with no look-alikes. */
export const IdentifierSchema = z
  .string()
  .min(1)
  .max(MAX_IDENTIFIER_LENGTH)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
/** A human-readable name: any text without control characters. */
export const DisplayNameSchema = z
  .string()
  .min(1)
  .max(MAX_IDENTIFIER_LENGTH)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');
/** Key version number (1-based). */
export const VersionSchema = z.number().int().min(1);
/** A point in time given by a caller (a valid Date). */
export const TimeSchema = z.date();
/** Bytes given by a caller. */
export const BytesSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be bytes (a Uint8Array)');
/** A non-empty blob no larger than {@link MAX_BLOB_BYTES}. */
export const BlobSchema = BytesSchema.refine((b) => b.length > 0 && b.length <= MAX_BLOB_BYTES, {
  message: `must be 1..${MAX_BLOB_BYTES} bytes`,
});
/** A SHA-256 value as 32 bytes (Merkle leaf hash, tree root). */
export const Hash32Schema = BytesSchema.refine((b) => b.length === 32, { message: 'must be 32 bytes' });
/** SHA-256 of a bearer token, lower-case hex. The store never sees the token itself. */
export const TokenHashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits (SHA-256)');
/** A role name. */
export const RolesSchema = z.array(IdentifierSchema).max(256).readonly();

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export const JsonValueSchema: z.ZodType<JsonValue, JsonValue> = z.json();

/** JSON text whose value is an object, kept byte-exact (an audit event is hashed as stored). */
export const JsonObjectTextSchema = z
  .string()
  .max(MAX_TEXT_LENGTH)
  .refine((s) => {
    const v = tryParseJson(s);
    return v.ok && typeof v.value === 'object' && v.value !== null && !Array.isArray(v.value);
  }, 'must be the JSON text of an object');

function tryParseJson(s: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(s) as unknown };
  } catch {
    return { ok: false };
  }
}

// --- stored representation -> row --------------------------------------------------

/** Integer milliseconds since the epoch, as stored. */
const DbTime = z
  .number()
  .int()
  .min(0)
  .max(8.64e15)
  .transform((ms) => new Date(ms));
/** A BLOB as returned by the driver (Node Buffer), exposed as a plain Uint8Array view. */
const DbBytes = BytesSchema.transform((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
const DbHash32 = Hash32Schema.transform((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
/** A 0/1 integer column. */
const DbBool = z.union([z.literal(0), z.literal(1)]).transform((n) => n === 1);
/** JSON text parsed and then checked against `inner`. */
function dbJson<T extends z.ZodType>(inner: T) {
  return z
    .string()
    .transform((s, ctx) => {
      const v = tryParseJson(s);
      if (!v.ok) {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
      return v.value;
    })
    .pipe(inner);
}

export const NamespaceRowSchema = z
  .object({ name: IdentifierSchema, created: DbTime })
  .transform((r) => ({ name: r.name, created: r.created }));

export const KeyRowSchema = z
  .object({
    ns: IdentifierSchema,
    name: IdentifierSchema,
    type: KeyTypeSchema,
    created: DbTime,
    rotation_period_seconds: z.number().int().min(1).nullable(),
    min_decryption_version: VersionSchema,
    exportable: z.literal(0),
    latest_version: VersionSchema,
  })
  .refine((r) => r.min_decryption_version <= r.latest_version, 'min_decryption_version exceeds latest_version')
  .transform((r) => ({
    ns: r.ns,
    name: r.name,
    type: r.type,
    created: r.created,
    rotationPeriodSeconds: r.rotation_period_seconds,
    minDecryptionVersion: r.min_decryption_version,
    /** Always false: key material never leaves the keyholder. */
    exportable: false as const,
    latestVersion: r.latest_version,
  }));

export const KeyVersionRowSchema = z
  .object({
    ns: IdentifierSchema,
    key: IdentifierSchema,
    version: VersionSchema,
    state: KeyVersionStateSchema,
    wrapped: DbBytes.nullable(),
    public_key: DbBytes.nullable(),
    created: DbTime,
    deletion_at: DbTime.nullable(),
    destroyed_at: DbTime.nullable(),
  })
  .superRefine((r, ctx) => {
    for (const problem of keyVersionProblems(r.state, r.wrapped, r.deletion_at, r.destroyed_at)) {
      ctx.addIssue({ code: 'custom', message: problem });
    }
  })
  .transform((r) => ({
    ns: r.ns,
    key: r.key,
    version: r.version,
    state: r.state,
    /** The version's secret wrapped under the master key; null once destroyed. */
    wrapped: r.wrapped,
    publicKey: r.public_key,
    created: r.created,
    deletionAt: r.deletion_at,
    destroyedAt: r.destroyed_at,
  }));

/** Which columns of a key version go together; the same rules are CHECK constraints. */
function keyVersionProblems(
  state: KeyVersionState,
  wrapped: Uint8Array | null,
  deletionAt: Date | null,
  destroyedAt: Date | null,
): string[] {
  const problems: string[] = [];
  const destroyed = state === 'destroyed';
  if (destroyed !== (wrapped === null)) problems.push('wrapped must be null exactly when destroyed');
  if (destroyed !== (destroyedAt !== null)) problems.push('destroyed_at must be set exactly when destroyed');
  if (state === 'scheduled_for_deletion' && deletionAt === null) problems.push('scheduled version without deletion_at');
  if ((state === 'enabled' || state === 'disabled') && deletionAt !== null) problems.push('live version with deletion_at');
  return problems;
}

export const PrincipalRowSchema = z
  .object({
    id: IdentifierSchema,
    ns: IdentifierSchema,
    kind: PrincipalKindSchema,
    name: DisplayNameSchema,
    roles: dbJson(RolesSchema),
    created: DbTime,
    disabled_at: DbTime.nullable(),
  })
  .transform((r) => ({
    id: r.id,
    ns: r.ns,
    kind: r.kind,
    name: r.name,
    roles: r.roles,
    created: r.created,
    /** When the principal was disabled (it can no longer authenticate; terminal), or null. */
    disabledAt: r.disabled_at,
  }));

export const TokenRowSchema = z
  .object({
    id: IdentifierSchema,
    token_hash: TokenHashSchema,
    principal: IdentifierSchema,
    admin: DbBool,
    expires_at: DbTime,
    revoked_at: DbTime.nullable(),
    created: DbTime,
  })
  .transform((r) => ({
    id: r.id,
    tokenHash: r.token_hash,
    principal: r.principal,
    admin: r.admin,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    created: r.created,
  }));

export const SigningKeyRowSchema = z
  .object({
    key_id: IdentifierSchema,
    principal: IdentifierSchema,
    alg: SigningKeyAlgSchema,
    public_key: DbBytes,
    created: DbTime,
    revoked_at: DbTime.nullable(),
  })
  .refine((r) => r.alg !== 'ed25519' || r.public_key.length === 32, 'ed25519 public key must be 32 bytes')
  .transform((r) => ({
    keyId: r.key_id,
    principal: r.principal,
    alg: r.alg,
    publicKey: r.public_key,
    created: r.created,
    revokedAt: r.revoked_at,
  }));

export const PolicyRowSchema = z
  .object({
    id: IdentifierSchema,
    ns: IdentifierSchema,
    version: VersionSchema,
    document: dbJson(JsonValueSchema),
    created: DbTime,
  })
  .transform((r) => ({ id: r.id, ns: r.ns, version: r.version, document: r.document, created: r.created }));

export const AuditEventRowSchema = z
  .object({
    idx: z.number().int().min(0),
    time: DbTime,
    event: JsonObjectTextSchema,
    leaf_hash: DbHash32,
  })
  .transform((r) => ({
    idx: r.idx,
    time: r.time,
    /** The event's JSON text exactly as appended (its leaf hash covers these bytes). */
    event: r.event,
    leafHash: r.leaf_hash,
  }));

export const AuditCheckpointRowSchema = z
  .object({
    size: z.number().int().min(0),
    root: DbHash32,
    note: z.string().min(1).max(MAX_TEXT_LENGTH),
    created: DbTime,
  })
  .transform((r) => ({ size: r.size, root: r.root, note: r.note, created: r.created }));

// --- inputs --------------------------------------------------------------------------

export const NewNamespaceSchema = z.object({ name: IdentifierSchema, created: TimeSchema });

/** A key version's material as the keyholder produced it. */
const VersionMaterialSchema = z.object({
  /** The secret, wrapped under the master key (AAD binds ns, key, version, type). */
  wrapped: BlobSchema,
  /** The public half for asymmetric types; null for aes256 and hmac-sha256. */
  publicKey: BlobSchema.nullable(),
});

export const NewKeySchema = z.object({
  ns: IdentifierSchema,
  name: IdentifierSchema,
  type: KeyTypeSchema,
  created: TimeSchema,
  rotationPeriodSeconds: z.number().int().min(1).nullable().default(null),
  firstVersion: VersionMaterialSchema,
});

export const KeyPatchSchema = z
  .object({
    rotationPeriodSeconds: z.number().int().min(1).nullable().optional(),
    minDecryptionVersion: VersionSchema.optional(),
  })
  .strict()
  .refine((p) => p.rotationPeriodSeconds !== undefined || p.minDecryptionVersion !== undefined, 'patch changes nothing');

export const RotateKeySchema = VersionMaterialSchema.extend({
  ns: IdentifierSchema,
  key: IdentifierSchema,
  /**
   * The version number the keyholder bound into `wrapped`. Must be exactly
   * latestVersion + 1, otherwise `KW_STORE_CONFLICT` (someone rotated first).
   * Omit it to let the store assign latestVersion + 1.
   */
  version: VersionSchema.optional(),
  created: TimeSchema,
});

export const KeyVersionRefSchema = z.object({ ns: IdentifierSchema, key: IdentifierSchema, version: VersionSchema });

export const KeyVersionStateChangeSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('enabled') }).strict(),
  z.object({ state: z.literal('disabled') }).strict(),
  z.object({ state: z.literal('scheduled_for_deletion'), deletionAt: TimeSchema }).strict(),
]);

export const NewPrincipalSchema = z.object({
  id: IdentifierSchema,
  ns: IdentifierSchema,
  kind: PrincipalKindSchema,
  name: DisplayNameSchema,
  roles: RolesSchema,
  created: TimeSchema,
});

export const NewTokenSchema = z.object({
  id: IdentifierSchema,
  tokenHash: TokenHashSchema,
  principal: IdentifierSchema,
  admin: z.boolean(),
  expiresAt: TimeSchema,
  created: TimeSchema,
});

export const NewSigningKeySchema = z
  .object({
    keyId: IdentifierSchema,
    principal: IdentifierSchema,
    alg: SigningKeyAlgSchema,
    publicKey: BlobSchema,
    created: TimeSchema,
  })
  .refine((k) => k.alg !== 'ed25519' || k.publicKey.length === 32, 'ed25519 public key must be 32 bytes');

export const NewPolicyVersionSchema = z.object({
  id: IdentifierSchema,
  ns: IdentifierSchema,
  /** 1 for a new policy, otherwise exactly the latest version + 1 (else `KW_STORE_CONFLICT`). */
  version: VersionSchema,
  document: JsonValueSchema,
  created: TimeSchema,
});

export const NewAuditEventSchema = z.object({
  time: TimeSchema,
  /** The event's JSON text (canonical, RFC 8785); stored and returned byte-exact. */
  event: JsonObjectTextSchema,
  leafHash: Hash32Schema,
  /** The index the keyholder assigned; if given and not the next one, `KW_STORE_CONFLICT`. */
  expectedIdx: z.number().int().min(0).optional(),
});

export const AuditRangeSchema = z
  .object({ start: z.number().int().min(0), end: z.number().int().min(0) })
  .refine((r) => r.start <= r.end, 'start must not exceed end')
  .refine((r) => r.end - r.start <= MAX_AUDIT_READ, `at most ${MAX_AUDIT_READ} events per read`);

export const NewAuditCheckpointSchema = z.object({
  size: z.number().int().min(0),
  root: Hash32Schema,
  note: z.string().min(1).max(MAX_TEXT_LENGTH),
  created: TimeSchema,
});

export const MetaValueSchema = z.string().max(MAX_TEXT_LENGTH);

// --- parsing helpers -----------------------------------------------------------------

/**
 * Validates a row read from `table`; a row that fails is `KW_STORE_CORRUPT_ROW`.
 * The message names the table and the failed rules, never the stored values.
 */
export function parseRow<S extends z.ZodType>(schema: S, row: unknown, table: string): z.output<S> {
  const r = schema.safeParse(row);
  if (!r.success) {
    throw new StoreError('KW_STORE_CORRUPT_ROW', `${table}: stored row fails validation: ${summarize(r.error)}`, {
      cause: r.error,
    });
  }
  return r.data;
}

/** Validates an argument; a bad one is `KW_STORE_INVALID_ARGUMENT`. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new StoreError('KW_STORE_INVALID_ARGUMENT', `${what}: ${summarize(r.error)}`, { cause: r.error });
  }
  return r.data;
}

function summarize(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
