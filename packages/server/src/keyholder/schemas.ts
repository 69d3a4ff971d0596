/**
 * Shapes of the values every keyholder operation names: namespaces, key
 * names, versions, key types, encryption contexts. protocol.ts will build its
 * request schemas from these; here they check the arguments of the pure
 * functions, so a bad argument is KW_INVALID_ARGUMENT before anything happens.
 */
import { z } from 'zod';
import { KeyholderError } from './errors.js';

export const KEY_TYPES = ['aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Namespace and key names: no `/` (the pair is written `<ns>/<key>`), no spaces, 1–64 characters. */
export const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'names are 1–64 of A–Z a–z 0–9 . _ - and start with a letter or digit');
export const versionSchema = z.int().min(1).max(2 ** 31 - 1);
export const keyTypeSchema = z.enum(KEY_TYPES);

/** Which key version: bound into every wrapped blob's AAD. */
export const versionRefSchema = z.strictObject({
  ns: nameSchema,
  key: nameSchema,
  version: versionSchema,
  type: keyTypeSchema,
});
export type VersionRef = z.infer<typeof versionRefSchema>;

/** Limits on a caller's encryption context (it also goes into HPKE info, so stays well inside core's limits). */
export const CONTEXT_LIMITS = { maxPairs: 32, maxKeyLength: 128, maxBytes: 4096 } as const;

/**
 * A caller's encryption context: string keys and values. Keys starting with
 * `kw_` (any case) are reserved for the keyholder's own bindings.
 */
export const contextSchema = z
  .record(
    z.string().min(1).max(CONTEXT_LIMITS.maxKeyLength)
      .refine((k) => k.isWellFormed(), 'context keys must be well-formed Unicode')
      .refine((k) => !k.toLowerCase().startsWith('kw_'), 'context keys starting with "kw_" are reserved'),
    z.string().refine((v) => v.isWellFormed(), 'context values must be well-formed Unicode'),
  )
  .refine((c) => Object.keys(c).length <= CONTEXT_LIMITS.maxPairs, `at most ${CONTEXT_LIMITS.maxPairs} context pairs`)
  .refine(
    (c) => Object.entries(c).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0) <= CONTEXT_LIMITS.maxBytes,
    `the context must be at most ${CONTEXT_LIMITS.maxBytes} bytes`,
  );
export type Context = Readonly<Record<string, string>>;

/** Parses `value` with `schema`; KW_INVALID_ARGUMENT naming the first problem. Returns the checked copy. */
export function parseArg<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length ? ` at ${issue.path.map(String).join('.')}` : '';
  throw new KeyholderError('KW_INVALID_ARGUMENT', `invalid ${what}${where}: ${issue?.message ?? 'rejected'}`, { cause: r.error });
}
