/**
 * Destroy receipts. When a key version is destroyed, the audit log gets a
 * `keys.destroy` event whose details carry a receipt: the facts
 * `{ ns, key, version, blob_sha256, time }` (blob_sha256 = SHA-256 of the
 * wrapped blob that was erased) signed with the keyholder's Ed25519 key, plus
 * the version's public-key fingerprint when it had one. Anyone holding the
 * keyholder's public key can later prove which exact blob was destroyed and
 * when, and a version "resurrected" from a backup shows up as a blob whose hash
 * has a receipt in the log.
 *
 * Signed message: `"keyward/v1 destroy-receipt\n" ‖ canonicalJson(facts)`.
 * The signing function is supplied (the key lives in the keyholder).
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { z } from 'zod';
import { HEX64, fromHex, sha256Hex, toHex, utf8 } from './bytes.js';
import { canonicalJson } from './canonical-json.js';
import { AuditError, check } from './errors.js';
import type { AuditEvent, AuditEventInput } from './event.js';

/** Domain-separation prefix of the signed receipt message. */
export const RECEIPT_LABEL = 'keyward/v1 destroy-receipt\n';

/** The signed facts of a destroy receipt. */
export interface DestroyReceiptFacts {
  readonly ns: string;
  readonly key: string;
  readonly version: number;
  /** Hex SHA-256 of the wrapped blob that was destroyed. */
  readonly blob_sha256: string;
  /** When the keyholder destroyed it (RFC 3339 UTC, milliseconds). */
  readonly time: string;
}

/** The keyholder's receipt signer: its Ed25519 public key and a signing function. */
export interface ReceiptSigner {
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) of `message`. */
  readonly sign: (message: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

const Hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`));
const ReceiptSchema = z.strictObject({
  ns: z.string().min(1).max(255),
  key: z.string().min(1).max(255),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  blob_sha256: Hex(64),
  time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
  public_sha256: Hex(64).nullable(),
  signer: Hex(64),
  signature: Hex(128),
});

/** The stored receipt (the event's `details.receipt`). */
export type DestroyReceipt = z.output<typeof ReceiptSchema>;

/**
 * The exact bytes the keyholder signs for `facts`.
 *
 * @example
 * const sig = ed25519Sign(receiptMessage({ ns, key, version, blob_sha256, time }));
 */
export function receiptMessage(facts: DestroyReceiptFacts): Uint8Array {
  const { ns, key, version, blob_sha256, time } = facts;
  return utf8.encode(RECEIPT_LABEL + canonicalJson({ ns, key, version, blob_sha256, time }));
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Builds the `keys.destroy` event input with a signed receipt. `wrapped` is
 * the blob being destroyed (only its hash is kept), `publicKey` the version's
 * public key for asymmetric types (its hash is kept), `time` when it was
 * destroyed.
 *
 * @example
 * const input = await destroyReceipt({ ns, key, version, wrapped, publicKey: null, time: new Date(), principal, auth: 'token' }, keyholderSigner);
 * await log.appendEvent(input, { storage: tx });
 */
export async function destroyReceipt(
  input: {
    readonly ns: string;
    readonly key: string;
    readonly version: number;
    readonly wrapped: Uint8Array;
    readonly publicKey?: Uint8Array | null;
    readonly time: Date;
    readonly principal: string | null;
    readonly auth: AuditEventInput['auth'];
    readonly request?: string | null;
  },
  signer: ReceiptSigner,
): Promise<AuditEventInput> {
  check(input.wrapped instanceof Uint8Array && input.wrapped.length > 0, 'wrapped must be the non-empty wrapped blob');
  check(input.time instanceof Date && !Number.isNaN(input.time.getTime()), 'time must be a valid Date');
  check(signer?.publicKey instanceof Uint8Array && signer.publicKey.length === 32, "signer.publicKey must be the keyholder's 32-byte Ed25519 public key");
  const facts: DestroyReceiptFacts = { ns: input.ns, key: input.key, version: input.version, blob_sha256: sha256Hex(input.wrapped), time: input.time.toISOString() };
  const signature = await signer.sign(receiptMessage(facts));
  check(signature instanceof Uint8Array && signature.length === 64, 'the receipt signature must be 64 bytes (Ed25519)');
  const receipt: DestroyReceipt = {
    ...facts,
    public_sha256: input.publicKey ? sha256Hex(input.publicKey) : null,
    signer: toHex(signer.publicKey),
    signature: toHex(signature),
  };
  ReceiptSchema.parse(receipt);
  return {
    ns: input.ns,
    principal: input.principal,
    auth: input.auth,
    op: 'keys.destroy',
    target: { key: input.key, version: input.version },
    outcome: 'allowed',
    request: input.request ?? null,
    details: { receipt },
  };
}

/**
 * Checks the receipt in a `keys.destroy` event: well-formed, about the event's
 * own namespace, key and version, signed by one of `trustedKeys` (raw Ed25519
 * public keys of the keyholder), and the signature verifies. Returns the
 * signed facts; throws `KW_AUDIT_BAD_RECEIPT` otherwise.
 *
 * @example
 * const { blob_sha256, time } = verifyReceipt(event, [keyholderPublicKey]);
 */
export function verifyReceipt(event: AuditEvent, trustedKeys: Uint8Array | readonly Uint8Array[]): DestroyReceiptFacts & { readonly public_sha256: string | null } {
  const bad = (why: string): AuditError => new AuditError('KW_AUDIT_BAD_RECEIPT', `destroy receipt: ${why}`, { details: typeof event?.index === 'number' ? { index: event.index } : {} });
  if (typeof event !== 'object' || event === null || event.op !== 'keys.destroy' || event.outcome !== 'allowed') throw bad('not an allowed keys.destroy event');
  const parsed = ReceiptSchema.safeParse((event.details as { receipt?: unknown }).receipt);
  if (!parsed.success) throw bad(`malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const r = parsed.data;
  if (r.ns !== event.ns || r.key !== event.target.key || r.version !== event.target.version) throw bad('it names another namespace, key or version than its event');
  const keys = trustedKeys instanceof Uint8Array ? [trustedKeys] : trustedKeys;
  const signer = fromHex(r.signer)!;
  if (!keys.some((k) => k instanceof Uint8Array && toHex(k) === r.signer)) throw bad('signed by a key that is not trusted');
  if (!HEX64.test(r.blob_sha256) || !ed25519Verify(signer, receiptMessage(r), fromHex(r.signature)!)) throw bad('the signature does not verify');
  return { ns: r.ns, key: r.key, version: r.version, blob_sha256: r.blob_sha256, time: r.time, public_sha256: r.public_sha256 };
}
