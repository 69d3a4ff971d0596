/**
 * Generates the published envelope vectors of format v1:
 *   packages/core/test/vectors/envelope-v1-positive.json
 *   packages/core/test/vectors/envelope-v1-negative.json
 *
 * Run once, then commit the output (tests only read the files):
 *   node --conditions=source --import tsx scripts/gen-vectors.ts
 *
 * This file also documents how every vector was made. Keys are derived
 * deterministically from labels (SHA-256 of "keyward/v1 test-vector key" ‖
 * label), so the key strings are stable; the envelopes hold fresh randomness
 * (salt, data key, HPKE encapsulations), so re-running changes their bytes but
 * not their names or expectations. Crafted envelopes are built with the
 * format's own building blocks (test/format/craft.ts: encodeHeader,
 * KeySchedule, ChunkSealer, StanzaContext, Recipient.wrap); no cryptography is
 * reimplemented. Before writing, every vector is opened once and its outcome
 * checked, so a published vector never disagrees with the implementation.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  armor, isKeywardError, KmsRecipient, open, PassphraseRecipient, seal, HpkeIdentity, SigningKey,
  type KemType, type KmsClient, type KeywardErrorCode, type PayloadAead, type Recipient, type SealOptions, type SignatureAlg,
} from '../packages/core/src/index.js';
import { concat, fromHex, toHex, u32be, utf8 } from '../packages/core/src/bytes.js';
import { LIMITS } from '../packages/core/src/format/constants.js';
import { encodeContext } from '../packages/core/src/format/context.js';
import { parseHeader } from '../packages/core/src/format/header.js';
import { StanzaContext } from '../packages/core/src/recipients/types.js';
import {
  craftEnvelope, flipBit, headerOffsets, newDataKey, patch, PATTERN_DESCRIPTION, patternBytes, randomBytes, reencodeHeader,
  sha256Hex, signDetached, splitEnvelope,
} from '../packages/core/test/format/craft.js';
import {
  VECTOR_FILES, vectorEnvelope, vectorOpenOptions,
  type NegativeVector, type PositiveVector, type VectorBase, type VectorFile,
} from '../packages/core/test/format/vector-schema.js';

const OUT_DIR = new URL('../packages/core/test/vectors/', import.meta.url);
const GENERATOR = 'scripts/gen-vectors.ts';

// ---------------------------------------------------------------------------
// Deterministic test keys (never use them for anything else)

function keySeed(label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i * 32 < length; i++) {
    out.set(createHash('sha256').update(`keyward/v1 test-vector key ${label}/${i}`).digest().subarray(0, Math.min(32, length - i * 32)), i * 32);
  }
  return out;
}

async function identity(type: KemType, label: string): Promise<HpkeIdentity> {
  // P-256 needs 0 < sk < n: the SHA-256 outputs used here are all in range (checked by importSecret).
  return HpkeIdentity.fromSecretKey(type, keySeed(`${type} ${label}`, 32));
}

async function signer(alg: SignatureAlg, label: string): Promise<SigningKey> {
  return SigningKey.fromSeed(alg, keySeed(`${alg} ${label}`, alg === 'ed25519' ? 32 : 64));
}

const alice = await identity('x25519', 'alice');
const bob = await identity('x25519', 'bob');
const erin = await identity('x25519', 'erin'); // addressed by no vector: the "wrong identity"
const carol = await identity('xwing', 'carol');
const dave = await identity('p256', 'dave');
const signer1 = await signer('ed25519', 'signer-1');
const signer2 = await signer('ed25519', 'signer-2');
const hybrid = await signer('ed25519-mldsa65', 'hybrid-signer');
const aliceR = await alice.recipient();
const bobR = await bob.recipient();
const carolR = await carol.recipient();
const daveR = await dave.recipient();

const PASSPHRASE = 'correct horse battery staple';
const LOGN = 10;

const text = (s: string) => utf8.encode(s);
const HELLO = text('Keyward envelope format v1: a test vector.\n');
const OTHER = text('A different plaintext, sealed separately.\n');

/** A recipient of a stanza type no reader knows yet: readers must skip it. */
const futureKem: Recipient = {
  type: 'future-kem',
  wrap: () => Promise.resolve({
    type: 'future-kem',
    fields: [randomBytes(16), randomBytes(1120), text('opaque: a KEM this reader does not implement')],
  }),
};

/** A stand-in key service: provides a data key with a well-formed `kms` stanza (key_ref, version, opaque blob) and opens nothing. */
const kmsClient: KmsClient = {
  generateDataKey: (keyRef) => Promise.resolve({ dataKey: randomBytes(32), stanza: { type: 'kms', fields: [text(keyRef), u32be(7), randomBytes(60)] } }),
  unwrap: () => Promise.resolve(null),
};
const kmsR = new KmsRecipient(kmsClient, 'tenants/acme');

// ---------------------------------------------------------------------------
// Vector builders

interface OpenSpec {
  readonly identities?: readonly HpkeIdentity[];
  readonly passphrase?: string;
  readonly verify?: readonly SigningKey[];
  readonly context?: readonly (readonly [string, string])[];
  readonly anyContext?: boolean;
  readonly maxAnonymousTrials?: number;
}

function openFields(s: OpenSpec): Omit<VectorBase, 'name' | 'description'> {
  return {
    ...(s.identities ? { identities: s.identities.map((i) => i.toString()) } : {}),
    ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
    ...(s.verify ? { verify: s.verify.map((k) => k.verifyingKey.toString()) } : {}),
    ...(s.context ? { context: s.context.map(([k, v]) => [k, v] as const) } : {}),
    ...(s.anyContext ? { any_context: true } : {}),
    ...(s.maxAnonymousTrials !== undefined ? { max_anonymous_trials: s.maxAnonymousTrials } : {}),
  };
}

const positives: PositiveVector[] = [];
const negatives: NegativeVector[] = [];
const names = new Set<string>();

function claim(name: string): void {
  assert.ok(/^[a-z0-9][a-z0-9-]*$/.test(name), `bad vector name ${name}`);
  assert.ok(!names.has(name), `duplicate vector name ${name}`);
  names.add(name);
}

interface PositiveSpec {
  readonly name: string;
  readonly description: string;
  readonly envelope: Uint8Array;
  readonly armored?: boolean;
  readonly plaintext: Uint8Array;
  readonly open: OpenSpec;
  readonly openedBy: string;
  readonly aead?: PayloadAead;
  /** The signer, when signed; `verified` follows from whether `open.verify` is given. */
  readonly signer?: SigningKey;
}

const SMALL = 1024;

async function positive(p: PositiveSpec): Promise<void> {
  claim(p.name);
  const n = p.plaintext.length;
  const large = n > SMALL;
  if (large) assert.deepEqual(p.plaintext, patternBytes(n), `${p.name}: large plaintexts must be the published pattern`);
  const v: PositiveVector = {
    name: p.name,
    description: p.description,
    ...openFields(p.open),
    ...(p.armored ? { armored: armor(p.envelope) } : { envelope_hex: toHex(p.envelope) }),
    ...(large
      ? { plaintext_length: n, plaintext_pattern: PATTERN_DESCRIPTION, plaintext_sha256: sha256Hex(p.plaintext) }
      : { plaintext_hex: toHex(p.plaintext) }),
    expected: {
      aead: p.aead ?? 'aes-256-gcm',
      opened_by: p.openedBy,
      chunk_count: Math.max(1, Math.ceil(n / 65536)),
      signature: p.signer ? { alg: p.signer.alg, key_id: toHex(p.signer.keyId), verified: p.open.verify !== undefined } : null,
    },
  };
  // Self-check: the vector opens to its plaintext with the advertised info.
  const r = await open(p.armored ? v.armored! : vectorEnvelope(v), await vectorOpenOptions(v));
  assert.equal(toHex(r.plaintext), toHex(p.plaintext), `${p.name}: plaintext`);
  assert.equal(r.aead, v.expected.aead, `${p.name}: aead`);
  assert.equal(r.openedBy, v.expected.opened_by, `${p.name}: openedBy`);
  assert.deepEqual(r.signature && { alg: r.signature.alg, key_id: r.signature.keyId, verified: r.signature.verified }, v.expected.signature, `${p.name}: signature`);
  positives.push(v);
}

interface NegativeSpec {
  readonly name: string;
  readonly description: string;
  readonly envelope: Uint8Array | string;
  readonly open: OpenSpec;
  readonly error: KeywardErrorCode;
}

async function negative(p: NegativeSpec): Promise<void> {
  claim(p.name);
  const v: NegativeVector = {
    name: p.name,
    description: p.description,
    ...openFields(p.open),
    ...(typeof p.envelope === 'string' ? { armored: p.envelope } : { envelope_hex: toHex(p.envelope) }),
    expected_error: p.error,
  };
  // Self-check: opening fails with exactly the expected code.
  let code: string | null = null;
  try {
    await open(typeof p.envelope === 'string' ? p.envelope : fromHex(v.envelope_hex!), await vectorOpenOptions(v));
  } catch (e) {
    code = isKeywardError(e) ? e.code : `non-KeywardError ${String(e)}`;
  }
  assert.equal(code, p.error, `${p.name}: expected ${p.error}, got ${code ?? 'success'}`);
  negatives.push(v);
}

const sealTo = (plaintext: Uint8Array, opts: SealOptions) => seal(plaintext, opts);
const withoutSignature = (env: Uint8Array, sigLen: number) => env.subarray(0, env.length - sigLen);

// ---------------------------------------------------------------------------
// Positive vectors

await positive({
  name: 'x25519', description: 'One x25519 recipient (HPKE base mode, DHKEM(X25519), HKDF-SHA256, AES-256-GCM); AES-256-GCM payload.',
  envelope: await sealTo(HELLO, { recipients: [aliceR] }), plaintext: HELLO, open: { identities: [alice] }, openedBy: 'x25519',
});
await positive({
  name: 'xwing', description: 'One xwing recipient (X-Wing: ML-KEM-768 + X25519 hybrid KEM).',
  envelope: await sealTo(HELLO, { recipients: [carolR] }), plaintext: HELLO, open: { identities: [carol] }, openedBy: 'xwing',
});
await positive({
  name: 'p256', description: 'One p256 recipient (DHKEM(P-256, HKDF-SHA256)).',
  envelope: await sealTo(HELLO, { recipients: [daveR] }), plaintext: HELLO, open: { identities: [dave] }, openedBy: 'p256',
});
await positive({
  name: 'multiple-recipients',
  description: 'Four stanzas (x25519 alice, xwing carol, p256 dave, x25519 bob); opened by the p256 identity, after a non-matching identity.',
  envelope: await sealTo(HELLO, { recipients: [aliceR, carolR, daveR, bobR] }), plaintext: HELLO,
  open: { identities: [erin, dave] }, openedBy: 'p256',
});
await positive({
  name: 'multiple-recipients-last',
  description: 'Same recipients; opened by the last stanza (x25519 bob). The earlier stanzas carry other key ids and are skipped without decryption.',
  envelope: await sealTo(HELLO, { recipients: [aliceR, carolR, daveR, bobR] }), plaintext: HELLO,
  open: { identities: [bob] }, openedBy: 'x25519',
});
await positive({
  name: 'anonymous',
  description: 'Anonymous mode: stanzas carry an empty key id, so the reader trial-decrypts. Stanzas: x25519 alice, xwing carol, x25519 bob; opened by bob.',
  envelope: await sealTo(HELLO, { recipients: [aliceR, carolR, bobR], anonymous: true }), plaintext: HELLO,
  open: { identities: [bob] }, openedBy: 'x25519',
});
const decoys = await Promise.all(Array.from({ length: 64 }, () => HpkeIdentity.generate('x25519').then((i) => i.recipient())));
await positive({
  name: 'anonymous-64-trials-at-limit',
  description: '64 anonymous x25519 stanzas; the opener is the 64th: exactly the default bound of 64 trial decryptions, so it opens.',
  envelope: await sealTo(HELLO, { recipients: [...decoys.slice(0, 63), aliceR], anonymous: true }), plaintext: HELLO,
  open: { identities: [alice] }, openedBy: 'x25519',
});
await positive({
  name: 'passphrase',
  description: `Passphrase (scrypt) stanza, work factor log2(N) = ${LOGN}, r = 8, p = 1; the only stanza.`,
  envelope: await sealTo(HELLO, { recipients: [new PassphraseRecipient(PASSPHRASE, LOGN)] }), plaintext: HELLO,
  open: { passphrase: PASSPHRASE }, openedBy: 'scrypt',
});
const NFC = 'Ångström-ключ-🔑'.normalize('NFC');
assert.notEqual(NFC, NFC.normalize('NFD'));
await positive({
  name: 'passphrase-unicode-normalized',
  description: `Sealed with a passphrase in NFC; the vector gives it in NFD: readers must NFC-normalize before scrypt (work factor ${LOGN}).`,
  envelope: await sealTo(HELLO, { recipients: [new PassphraseRecipient(NFC, LOGN)] }), plaintext: HELLO,
  open: { passphrase: NFC.normalize('NFD') }, openedBy: 'scrypt',
});
const CONTEXT: [string, string][] = [['tenant', 'acme'], ['table', 'orders'], ['région', 'Île-de-France 🗼'], ['note', '']];
const contextEnv = await sealTo(HELLO, { recipients: [aliceR], context: CONTEXT });
await positive({
  name: 'context',
  description: 'Encryption context of four pairs (UTF-8, one empty value); the opener requires exactly these pairs.',
  envelope: contextEnv, plaintext: HELLO, open: { identities: [alice], context: CONTEXT }, openedBy: 'x25519',
});
await positive({
  name: 'context-reordered-on-open',
  description: 'The same envelope; the opener lists the pairs in another order. The comparison is a set comparison (the order is fixed in the header).',
  envelope: contextEnv, plaintext: HELLO, open: { identities: [alice], context: [...CONTEXT].reverse() }, openedBy: 'x25519',
});
await positive({
  name: 'context-any',
  description: 'The same envelope; the opener explicitly opts out of the context check (any_context) and gives none.',
  envelope: contextEnv, plaintext: HELLO, open: { identities: [alice], anyContext: true }, openedBy: 'x25519',
});
const BOM_CONTEXT: [string, string][] = [['tenant', '\uFEFFacme'], ['\uFEFFkey', 'value']];
const bomEnv = await sealTo(HELLO, { recipients: [aliceR], context: BOM_CONTEXT });
await positive({
  name: 'context-leading-bom',
  description: 'Context strings that begin with U+FEFF (bytes ef bb bf): part of the string, never stripped as a byte-order mark.',
  envelope: bomEnv, plaintext: HELLO, open: { identities: [alice], context: BOM_CONTEXT }, openedBy: 'x25519',
});
await positive({
  name: 'chacha20-poly1305',
  description: 'ChaCha20-Poly1305 payload AEAD (aead id 2), two chunks (70000 bytes of the pattern).',
  envelope: await sealTo(patternBytes(70000), { recipients: [aliceR], aead: 'chacha20-poly1305' }), plaintext: patternBytes(70000),
  open: { identities: [alice] }, openedBy: 'x25519', aead: 'chacha20-poly1305',
});
await positive({
  name: 'signed-ed25519',
  description: 'Signed with Ed25519 over "keyward/v1 signature" ‖ 0x00 ‖ SHA-512(header ‖ payload); the opener requires signer-1.',
  envelope: await sealTo(HELLO, { recipients: [aliceR], signer: signer1 }), plaintext: HELLO,
  open: { identities: [alice], verify: [signer1] }, openedBy: 'x25519', signer: signer1,
});
await positive({
  name: 'signed-ed25519-two-chunks',
  description: 'Signed with Ed25519; two chunks (65537 bytes of the pattern): the signature covers every ciphertext chunk.',
  envelope: await sealTo(patternBytes(65537), { recipients: [aliceR], signer: signer1 }), plaintext: patternBytes(65537),
  open: { identities: [alice], verify: [signer1] }, openedBy: 'x25519', signer: signer1,
});
await positive({
  name: 'signed-ed25519-several-verifying-keys',
  description: 'Signed by signer-1; the opener accepts signer-2 or signer-1 and picks the key by the key id in the header.',
  envelope: await sealTo(HELLO, { recipients: [aliceR], signer: signer1 }), plaintext: HELLO,
  open: { identities: [alice], verify: [signer2, signer1] }, openedBy: 'x25519', signer: signer1,
});
await positive({
  name: 'signed-ed25519-unverified',
  description: 'Signed by signer-1; the opener gives no verifying keys, so the plaintext is returned with the signature reported unverified.',
  envelope: await sealTo(HELLO, { recipients: [aliceR], signer: signer1 }), plaintext: HELLO,
  open: { identities: [alice] }, openedBy: 'x25519', signer: signer1,
});
await positive({
  name: 'signed-hybrid',
  description: 'Signed with the hybrid Ed25519 + ML-DSA-65 (signature = Ed25519 ‖ ML-DSA-65, 3373 bytes); both halves must verify.',
  envelope: await sealTo(HELLO, { recipients: [aliceR], signer: hybrid }), plaintext: HELLO,
  open: { identities: [alice], verify: [hybrid] }, openedBy: 'x25519', signer: hybrid,
});
for (const n of [0, 1, 65535, 65536, 65537, 131072 + 5]) {
  await positive({
    name: `size-${n}`,
    description: `${n} plaintext bytes (byte i = ${PATTERN_DESCRIPTION}): ${Math.max(1, Math.ceil(n / 65536))} chunk(s)${n === 0 ? ', one empty final chunk' : ''}${n % 65536 === 0 && n > 0 ? ', the final chunk full' : ''}.`,
    envelope: await sealTo(patternBytes(n), { recipients: [aliceR] }), plaintext: patternBytes(n),
    open: { identities: [alice] }, openedBy: 'x25519',
  });
}
const armorPlain = text('Armored envelopes are base64 with padding, 64 columns, LF line endings, between BEGIN and END lines.\n');
await positive({
  name: 'armored',
  description: 'The armored text form of an x25519 envelope (canonical: padded base64, 64 columns, LF, one final newline).',
  envelope: await sealTo(armorPlain, { recipients: [aliceR] }), armored: true, plaintext: armorPlain,
  open: { identities: [alice] }, openedBy: 'x25519',
});
await positive({
  name: 'kms-stanza-skipped',
  description: 'A kms stanza (key_ref "tenants/acme", version 7, opaque blob) before an x25519 stanza: an opener without a key-service identity skips it.',
  envelope: await sealTo(HELLO, { recipients: [kmsR, aliceR] }), plaintext: HELLO, open: { identities: [alice] }, openedBy: 'x25519',
});
await positive({
  name: 'unknown-stanza-type-first',
  description: 'A stanza of unknown type "future-kem" (3 opaque fields) precedes the x25519 stanza: readers skip unknown types (the header MAC still covers them).',
  envelope: await sealTo(HELLO, { recipients: [futureKem, aliceR] }), plaintext: HELLO,
  open: { identities: [alice] }, openedBy: 'x25519',
});

// Sanity check of the crafting tool: a crafted envelope with ordinary content opens like a sealed one.
{
  const dk = newDataKey();
  const crafted = await craftEnvelope({ dataKey: dk, plaintext: HELLO, signer: signer1, stanzas: async (sctx) => [await aliceR.wrap(dk, sctx)] });
  assert.deepEqual((await open(crafted, { identities: [alice], verify: [signer1.verifyingKey] })).plaintext, HELLO);
}

// ---------------------------------------------------------------------------
// Negative vectors

const small = await sealTo(HELLO, { recipients: [aliceR] });
const smallOffsets = headerOffsets(small);

// Stanza transplants (same recipient, another envelope).
{
  const donor = await sealTo(OTHER, { recipients: [aliceR] });
  const donorHeader = parseHeader(donor);
  const donorStanza = { type: donorHeader.stanzas[0]!.type, fields: donorHeader.stanzas[0]!.fields.map((f) => f.slice()) };
  await negative({
    name: 'stanza-transplanted',
    description: "The x25519 stanza replaced by alice's stanza from another envelope (header MAC kept). HPKE binds the header salt as AAD, so the addressed stanza fails to unwrap.",
    envelope: reencodeHeader(small, (h) => { h.stanzas = [donorStanza]; }), open: { identities: [alice] }, error: 'KW_STANZA_UNWRAP_FAILED',
  });
  await negative({
    name: 'stanza-and-salt-transplanted',
    description: 'Stanza and salt both taken from another envelope to alice: the stanza unwraps to that envelope\'s data key, which does not match this header\'s commitment.',
    envelope: reencodeHeader(small, (h) => { h.stanzas = [donorStanza]; h.salt = donorHeader.salt.slice(); }),
    open: { identities: [alice] }, error: 'KW_COMMITMENT_MISMATCH',
  });
}

// Signatures.
{
  const signed = await sealTo(HELLO, { recipients: [aliceR], signer: signer1 });
  const body = withoutSignature(signed, 64);
  const sig = signed.subarray(body.length);
  await negative({
    name: 'signature-stripped',
    description: 'The 64-byte Ed25519 signature removed from a signed envelope; the opener requires signer-1.',
    envelope: body, open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_MISSING',
  });
  const signed2 = await sealTo(patternBytes(65537), { recipients: [aliceR], signer: signer1 });
  await negative({
    name: 'signature-stripped-two-chunks',
    description: 'The signature removed from a signed two-chunk envelope (65537 bytes of the pattern); the opener requires signer-1.',
    envelope: withoutSignature(signed2, 64), open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_MISSING',
  });
  const p2 = splitEnvelope(signed2);
  await negative({
    name: 'signed-truncated-at-chunk-boundary',
    description: 'A signed two-chunk envelope (65537 bytes) cut after its first chunk: the final chunk and the signature are gone.',
    envelope: concat(p2.header, p2.chunks[0]!), open: { identities: [alice], verify: [signer1] }, error: 'KW_TRUNCATED',
  });
  await negative({
    name: 'signature-stripped-no-verify',
    description: 'The signature removed; the opener gives no verifying keys. The MACed header still declares a 64-byte signature, so it is missed anyway.',
    envelope: body, open: { identities: [alice] }, error: 'KW_SIGNATURE_MISSING',
  });
  await negative({
    name: 'signature-one-byte-cut',
    description: 'The last byte of the signature removed: the final chunk is then misaligned.',
    envelope: signed.subarray(0, signed.length - 1), open: { identities: [alice], verify: [signer1] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  await negative({
    name: 'signature-one-byte-appended',
    description: 'One byte appended after the signature (the final chunk is short): the final chunk is then misaligned.',
    envelope: concat(signed, new Uint8Array([0])), open: { identities: [alice], verify: [signer1] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  await negative({
    name: 'signature-bit-flipped',
    description: 'One bit of the Ed25519 signature flipped (same key, invalid signature).',
    envelope: concat(body, flipBit(sig, 100)), open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_INVALID',
  });
  const sameKeyOther = await sealTo(HELLO, { recipients: [aliceR], signer: signer1 });
  await negative({
    name: 'signature-from-other-envelope',
    description: "The signature replaced by signer-1's valid signature of another envelope (same key, same plaintext, different header and ciphertext).",
    envelope: concat(body, sameKeyOther.subarray(sameKeyOther.length - 64)), open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_INVALID',
  });
  const bySigner2 = concat(body, await signDetached(signer2, body));
  await negative({
    name: 'signature-replaced-other-key',
    description: "The signature replaced by signer-2's valid signature of the very same message; the header still names signer-1, whom the opener requires.",
    envelope: bySigner2, open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_INVALID',
  });
  await negative({
    name: 'signature-replaced-other-key-verify-other',
    description: 'The same envelope; the opener requires signer-2, but the header names signer-1.',
    envelope: bySigner2, open: { identities: [alice], verify: [signer2] }, error: 'KW_SIGNER_UNKNOWN',
  });
  const swapped = reencodeHeader(body, (h) => { h.signer = { alg: 'ed25519', keyId: signer2.keyId.slice() }; });
  const swappedSigned = concat(swapped, await signDetached(signer2, swapped));
  await negative({
    name: 'signer-key-id-swapped',
    description: "The header's signer key id replaced by signer-2's (header MAC kept) and a valid signer-2 signature appended; the opener requires signer-1.",
    envelope: swappedSigned, open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNER_UNKNOWN',
  });
  await negative({
    name: 'signer-key-id-swapped-both-trusted',
    description: 'The same envelope; the opener accepts signer-1 or signer-2, so the swap is caught by the header MAC (which covers the signer key id).',
    envelope: swappedSigned, open: { identities: [alice], verify: [signer1, signer2] }, error: 'KW_HEADER_MAC_MISMATCH',
  });
  await negative({
    name: 'signed-by-unexpected-signer',
    description: 'A genuine envelope signed by signer-2; the opener requires signer-1.',
    envelope: await sealTo(HELLO, { recipients: [aliceR], signer: signer2 }), open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNER_UNKNOWN',
  });
  await negative({
    name: 'unsigned-but-verify-required',
    description: 'An unsigned envelope; the opener requires a signature by signer-1.',
    envelope: small, open: { identities: [alice], verify: [signer1] }, error: 'KW_SIGNATURE_MISSING',
  });
  const h1 = await sealTo(HELLO, { recipients: [aliceR], signer: hybrid });
  const h2 = await sealTo(HELLO, { recipients: [aliceR], signer: hybrid });
  const hBody = withoutSignature(h1, 3373);
  const hSig1 = h1.subarray(hBody.length), hSig2 = h2.subarray(h2.length - 3373);
  await negative({
    name: 'hybrid-signature-mldsa-half-replaced',
    description: 'Hybrid signature whose Ed25519 half is valid and whose ML-DSA-65 half is a valid signature of another envelope: both halves must verify.',
    envelope: concat(hBody, hSig1.subarray(0, 64), hSig2.subarray(64)), open: { identities: [alice], verify: [hybrid] }, error: 'KW_SIGNATURE_INVALID',
  });
  await negative({
    name: 'hybrid-signature-ed25519-half-replaced',
    description: 'Hybrid signature whose ML-DSA-65 half is valid and whose Ed25519 half is a valid signature of another envelope.',
    envelope: concat(hBody, hSig2.subarray(0, 64), hSig1.subarray(64)), open: { identities: [alice], verify: [hybrid] }, error: 'KW_SIGNATURE_INVALID',
  });
  await negative({
    name: 'hybrid-signature-stripped',
    description: 'The 3373-byte hybrid signature removed; the opener requires the hybrid signer.',
    envelope: hBody, open: { identities: [alice], verify: [hybrid] }, error: 'KW_SIGNATURE_MISSING',
  });
}

// Crafted headers (need the data key: built with craftEnvelope).
{
  const dk = newDataKey();
  const scryptAndX25519 = await craftEnvelope({
    dataKey: dk, plaintext: HELLO,
    stanzas: async (sctx) => [await new PassphraseRecipient(PASSPHRASE, LOGN).wrap(dk, sctx), await aliceR.wrap(dk, sctx)],
  });
  await negative({
    name: 'scrypt-not-alone',
    description: `Crafted: a scrypt stanza (work factor ${LOGN}) and an x25519 stanza wrapping the same data key, correctly committed and MACed. A scrypt stanza must be the only one.`,
    envelope: scryptAndX25519, open: { passphrase: PASSPHRASE }, error: 'KW_SCRYPT_NOT_ALONE',
  });
  await negative({
    name: 'scrypt-not-alone-x25519-opener',
    description: 'The same envelope opened with the x25519 identity: refused as well, before any stanza is tried.',
    envelope: scryptAndX25519, open: { identities: [alice] }, error: 'KW_SCRYPT_NOT_ALONE',
  });

  const keyA = newDataKey(), keyB = newDataKey();
  const salamander = await craftEnvelope({
    dataKey: keyA, plaintext: HELLO,
    stanzas: async (sctx) => [await aliceR.wrap(keyA, sctx), await bobR.wrap(keyB, sctx)],
  });
  assert.deepEqual((await open(salamander, { identities: [alice] })).plaintext, HELLO); // the committed key opens
  await negative({
    name: 'invisible-salamander',
    description: "Crafted: stanza 1 wraps data key A for alice, stanza 2 wraps a different data key B for bob; commitment, header MAC and payload use A. Bob's key does not match the commitment.",
    envelope: salamander, open: { identities: [bob] }, error: 'KW_COMMITMENT_MISMATCH',
  });

  const dk2 = newDataKey();
  const rebound = await craftEnvelope({
    dataKey: dk2, plaintext: HELLO, context: [['tenant', 'evil']],
    stanzas: async (sctx) => {
      // The stanza is wrapped under the context tenant=acme, then placed in a header whose context is tenant=evil.
      const original: [string, string][] = [['tenant', 'acme']];
      return [await aliceR.wrap(dk2, new StanzaContext(sctx.salt, original, encodeContext(original), false))];
    },
  });
  await negative({
    name: 'context-rebound-remaced',
    description: 'Crafted by a holder of the data key: a stanza wrapped under context tenant=acme placed in a header with context tenant=evil, with a correct commitment and header MAC. HPKE info binds the context, so the stanza does not unwrap.',
    envelope: rebound, open: { identities: [alice], context: [['tenant', 'evil']] }, error: 'KW_STANZA_UNWRAP_FAILED',
  });

  const dk4 = newDataKey();
  await negative({
    name: 'x25519-stanza-malformed',
    description: 'Crafted: the x25519 stanza for alice carries a fourth (empty) field; commitment and header MAC are correct. A known stanza type with the wrong layout aborts the open.',
    envelope: await craftEnvelope({
      dataKey: dk4, plaintext: HELLO,
      stanzas: async (sctx) => {
        const st = await aliceR.wrap(dk4, sctx);
        return [{ type: st.type, fields: [...st.fields, new Uint8Array(0)] }];
      },
    }),
    open: { identities: [alice] }, error: 'KW_MALFORMED_HEADER',
  });

  const dk5 = newDataKey();
  await negative({
    name: 'kms-stanza-empty-key-ref',
    description: 'Crafted: a kms stanza with an empty key_ref (a kms stanza must always name its key) before a valid x25519 stanza; commitment and header MAC are correct.',
    envelope: await craftEnvelope({
      dataKey: dk5, plaintext: HELLO,
      stanzas: async (sctx) => [{ type: 'kms', fields: [new Uint8Array(0), u32be(1), randomBytes(60)] }, await aliceR.wrap(dk5, sctx)],
    }),
    open: { identities: [alice] }, error: 'KW_MALFORMED_HEADER',
  });

  const dk3 = newDataKey();
  await negative({
    name: 'empty-final-chunk-after-full-chunk',
    description: 'Crafted: a full non-final chunk followed by an empty final chunk (non-canonical: the final chunk is empty only when the whole payload is).',
    envelope: await craftEnvelope({
      dataKey: dk3, stanzas: async (sctx) => [await aliceR.wrap(dk3, sctx)],
      chunks: [[patternBytes(65536), false], [new Uint8Array(0), true]],
    }),
    open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
}

// Payload chunks.
{
  const two = await sealTo(patternBytes(131072), { recipients: [aliceR] });
  const p2 = splitEnvelope(two);
  assert.equal(p2.chunks.length, 2);
  await negative({
    name: 'chunks-reordered',
    description: 'The two full chunks of a 131072-byte envelope swapped.',
    envelope: concat(p2.header, p2.chunks[1]!, p2.chunks[0]!), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  const three = await sealTo(patternBytes(65537), { recipients: [aliceR] });
  const p3 = splitEnvelope(three);
  assert.equal(p3.chunks.length, 2);
  await negative({
    name: 'chunk-duplicated',
    description: 'The first chunk of a 65537-byte envelope repeated (chunks 0, 0, 1).',
    envelope: concat(p3.header, p3.chunks[0]!, p3.chunks[0]!, p3.chunks[1]!), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  await negative({
    name: 'truncated-at-chunk-boundary',
    description: 'A 65537-byte envelope cut after its first (full, non-final) chunk.',
    envelope: concat(p3.header, p3.chunks[0]!), open: { identities: [alice] }, error: 'KW_TRUNCATED',
  });
  await negative({
    name: 'truncated-after-header',
    description: 'Only the header (with its MAC): no payload chunk at all.',
    envelope: splitEnvelope(small).header, open: { identities: [alice] }, error: 'KW_TRUNCATED',
  });
  await negative({
    name: 'truncated-inside-final-chunk',
    description: 'The last byte of the (only, final) chunk removed.',
    envelope: small.subarray(0, small.length - 1), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  const full = await sealTo(patternBytes(65536), { recipients: [aliceR] });
  const pf = splitEnvelope(full);
  assert.equal(pf.chunks.length, 1);
  await negative({
    name: 'trailing-whole-chunk',
    description: 'A 65536-byte envelope (one full final chunk) followed by a copy of that chunk: a whole chunk after the final one.',
    envelope: concat(full, pf.chunks[0]!), open: { identities: [alice] }, error: 'KW_TRAILING_DATA',
  });
  await negative({
    name: 'trailing-bytes',
    description: 'A 65536-byte envelope (one full final chunk) followed by 5 extra bytes.',
    envelope: concat(full, text('extra')), open: { identities: [alice] }, error: 'KW_TRAILING_DATA',
  });
  await negative({
    name: 'trailing-byte-after-short-final-chunk',
    description: 'A short final chunk followed by one extra byte: the extra byte becomes part of the final chunk, which fails authentication.',
    envelope: concat(small, new Uint8Array([0])), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  await negative({
    name: 'payload-bit-flipped',
    description: 'One bit of the payload ciphertext flipped.',
    envelope: flipBit(small, (smallOffsets.payload + 3) * 8 + 2), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
  await negative({
    name: 'payload-tag-bit-flipped',
    description: 'One bit of the final chunk\'s authentication tag flipped.',
    envelope: flipBit(small, (small.length - 1) * 8 + 7), open: { identities: [alice] }, error: 'KW_PAYLOAD_AUTH_FAILED',
  });
}

// Header modifications (without the data key: the MAC cannot be recomputed).
{
  const ctx: [string, string][] = [['tenant', 'acme']];
  const base = await sealTo(HELLO, { recipients: [futureKem, aliceR], context: ctx });
  const o = headerOffsets(base);
  const bh = parseHeader(base);
  const opener: OpenSpec = { identities: [alice], context: ctx };
  const unknownFieldOffset = o.firstStanza + 1 + 'future-kem'.length + 1 + 2; // first byte of the unknown stanza's first field
  const x25519StanzaOffset = o.firstStanza + 1 + 'future-kem'.length + 1 + bh.stanzas[0]!.fields.reduce((n, f) => n + 2 + f.length, 0);
  const keyIdOffset = x25519StanzaOffset + 1 + 'x25519'.length + 1 + 2;
  const cases: [string, string, Uint8Array, KeywardErrorCode][] = [
    ['header-mac-bit-flipped', 'One bit of the header MAC flipped.', flipBit(base, o.mac * 8 + 5), 'KW_HEADER_MAC_MISMATCH'],
    ['header-commitment-bit-flipped', 'One bit of the key commitment flipped.', flipBit(base, o.commitment * 8), 'KW_COMMITMENT_MISMATCH'],
    ['header-aead-id-swapped', 'Payload AEAD id changed from 1 (AES-256-GCM) to 2 (ChaCha20-Poly1305).', patch(base, o.aead, [2]), 'KW_HEADER_MAC_MISMATCH'],
    ['header-aead-id-unknown', 'Payload AEAD id 3 (unassigned).', patch(base, o.aead, [3]), 'KW_UNSUPPORTED'],
    ['header-chunk-log2-changed', 'chunk_log2 17 instead of 16 (v1 fixes 64 KiB chunks).', patch(base, o.chunkLog2, [17]), 'KW_MALFORMED_HEADER'],
    ['header-reserved-byte-set', 'The reserved header byte set to 1.', patch(base, o.reserved, [1]), 'KW_MALFORMED_HEADER'],
    ['header-salt-bit-flipped', 'One bit of the header salt flipped: the x25519 stanza (HPKE aad = salt) no longer unwraps.', flipBit(base, o.salt * 8 + 9), 'KW_STANZA_UNWRAP_FAILED'],
    ['header-unknown-stanza-bit-flipped', 'One bit inside the skipped unknown stanza flipped: only the header MAC notices.', flipBit(base, unknownFieldOffset * 8 + 1), 'KW_HEADER_MAC_MISMATCH'],
    ['header-stanza-key-id-bit-flipped', "One bit of the x25519 stanza's key id flipped: the stanza is no longer addressed to the opener.", flipBit(base, keyIdOffset * 8 + 3), 'KW_NO_IDENTITY_MATCHED'],
    ['header-stanza-type-invalid', 'The x25519 stanza type changed to "X25519" (stanza types are lowercase).', patch(base, x25519StanzaOffset + 1, text('X')), 'KW_MALFORMED_HEADER'],
    ['header-stanza-count-zero', 'stanza_count set to 0.', patch(base, o.stanzaCount, [0, 0]), 'KW_MALFORMED_HEADER'],
    ['header-stanza-count-over-limit', `stanza_count set to ${LIMITS.maxStanzas + 1}.`, patch(base, o.stanzaCount, [(LIMITS.maxStanzas + 1) >> 8, (LIMITS.maxStanzas + 1) & 0xff]), 'KW_LIMIT_EXCEEDED'],
    ['header-stanza-too-many-fields', 'The unknown stanza\'s field_count set to 9 (at most 8).', patch(base, o.firstStanza + 1 + 'future-kem'.length, [9]), 'KW_LIMIT_EXCEEDED'],
    ['header-signature-alg-unknown', 'Signature algorithm id 3 (unassigned) in an unsigned envelope.', patch(base, o.sigAlg, [3]), 'KW_UNSUPPORTED'],
    ['header-context-invalid-utf8', 'A byte of the context value replaced by 0xff (not UTF-8).', patch(base, o.context + 2 + 2 + 'tenant'.length + 2, [0xff]), 'KW_MALFORMED_HEADER'],
    ['header-body-trailing-byte', 'header_len one larger, with an extra zero byte after the commitment.', concat(patch(base.subarray(0, o.mac), o.headerLen, u32be(bh.length - 9 - 32 + 1)), new Uint8Array([0]), base.subarray(o.mac)), 'KW_MALFORMED_HEADER'],
    ['header-context-value-changed', 'The context value changed to tenant=evil (header MAC kept); the opener asks for tenant=evil. HPKE info binds the context, so the stanza does not unwrap.', reencodeHeader(base, (h) => { h.context = [['tenant', 'evil']]; }), 'KW_STANZA_UNWRAP_FAILED'],
    ['header-context-too-many-pairs', `The context re-encoded with ${LIMITS.maxContextPairs + 1} pairs.`, reencodeHeader(base, (h) => {
      h.context = Array.from({ length: LIMITS.maxContextPairs + 1 }, (_, i) => [`k${i}`, ''] as [string, string]);
    }), 'KW_LIMIT_EXCEEDED'],
    ['header-context-duplicate-key', 'The context re-encoded as tenant=acme, tenant=acme (duplicate key).', reencodeHeader(base, (h) => { h.context = [['tenant', 'acme'], ['tenant', 'acme']]; }), 'KW_MALFORMED_HEADER'],
  ];
  for (const [name, description, envelope, error] of cases) {
    await negative({ name, description, envelope, open: name === 'header-context-value-changed' ? { identities: [alice], context: [['tenant', 'evil']] } : opener, error });
  }
  await negative({ name: 'bad-magic', description: 'Magic "KWRX" instead of "KWRD".', envelope: patch(small, 3, text('X')), open: { identities: [alice] }, error: 'KW_NOT_AN_ENVELOPE' });
  await negative({ name: 'unknown-version', description: 'Format version 2.', envelope: patch(small, 4, [2]), open: { identities: [alice] }, error: 'KW_UNSUPPORTED_VERSION' });
  await negative({
    name: 'header-len-over-limit', description: `header_len = ${LIMITS.maxHeaderLength + 1}, one more than the 4 MiB limit (rejected from the preamble alone).`,
    envelope: patch(small, 5, u32be(LIMITS.maxHeaderLength + 1)), open: { identities: [alice] }, error: 'KW_LIMIT_EXCEEDED',
  });
  await negative({ name: 'empty-input', description: 'Zero bytes.', envelope: new Uint8Array(0), open: { identities: [alice] }, error: 'KW_MALFORMED_HEADER' });
  await negative({ name: 'short-garbage', description: 'Three bytes "abc": fewer than 4, but already not the start of "KWRD".', envelope: text('abc'), open: { identities: [alice] }, error: 'KW_NOT_AN_ENVELOPE' });
  await negative({ name: 'magic-prefix-only', description: 'The three bytes "KWR": a prefix of the magic, then the input ends.', envelope: text('KWR'), open: { identities: [alice] }, error: 'KW_MALFORMED_HEADER' });
  await negative({ name: 'truncated-inside-header', description: 'The first 40 bytes of an envelope.', envelope: small.subarray(0, 40), open: { identities: [alice] }, error: 'KW_MALFORMED_HEADER' });
}

// Identities, passphrases and contexts.
{
  await negative({ name: 'wrong-identity', description: 'Opened with an x25519 identity the envelope is not addressed to.', envelope: small, open: { identities: [erin] }, error: 'KW_NO_IDENTITY_MATCHED' });
  await negative({ name: 'wrong-identity-type', description: 'An x25519 envelope opened with only an xwing and a p256 identity.', envelope: small, open: { identities: [carol, dave] }, error: 'KW_NO_IDENTITY_MATCHED' });
  const pass = await sealTo(HELLO, { recipients: [new PassphraseRecipient(PASSPHRASE, LOGN)] });
  await negative({ name: 'wrong-passphrase', description: `Passphrase envelope (work factor ${LOGN}) opened with another passphrase.`, envelope: pass, open: { passphrase: 'Tr0ub4dor&3' }, error: 'KW_WRONG_PASSPHRASE' });
  const wf = (n: number) => reencodeHeader(pass, (h) => { h.stanzas[0]!.fields[1] = new Uint8Array([n]); });
  await negative({
    name: 'scrypt-work-factor-23', description: 'The scrypt stanza\'s work factor byte set to 23, above the default maximum of 22: refused before any scrypt computation.',
    envelope: wf(23), open: { passphrase: PASSPHRASE }, error: 'KW_SCRYPT_WORK_FACTOR',
  });
  await negative({
    name: 'scrypt-work-factor-9', description: 'The work factor byte set to 9, below the minimum of 10.',
    envelope: wf(9), open: { passphrase: PASSPHRASE }, error: 'KW_SCRYPT_WORK_FACTOR',
  });
  await negative({
    name: 'passphrase-envelope-x25519-opener', description: 'A passphrase envelope opened with an x25519 identity only.',
    envelope: pass, open: { identities: [alice] }, error: 'KW_NO_IDENTITY_MATCHED',
  });
  await negative({
    name: 'context-mismatch', description: 'Envelope context tenant=acme, table=orders, région=…, note=""; the opener requires tenant=other and the rest unchanged.',
    envelope: contextEnv, open: { identities: [alice], context: CONTEXT.map(([k, v]) => [k, k === 'tenant' ? 'other' : v] as [string, string]) }, error: 'KW_CONTEXT_MISMATCH',
  });
  await negative({
    name: 'context-missing-on-open', description: 'An envelope with a context; the opener requires none (the empty context).',
    envelope: contextEnv, open: { identities: [alice] }, error: 'KW_CONTEXT_MISMATCH',
  });
  await negative({
    name: 'context-subset-on-open', description: 'The opener requires only tenant=acme; the envelope has three more pairs.',
    envelope: contextEnv, open: { identities: [alice], context: [['tenant', 'acme']] }, error: 'KW_CONTEXT_MISMATCH',
  });
  await negative({
    name: 'context-unexpected-on-open', description: 'An envelope without context; the opener requires tenant=acme.',
    envelope: small, open: { identities: [alice], context: [['tenant', 'acme']] }, error: 'KW_CONTEXT_MISMATCH',
  });
  await negative({
    name: 'context-bom-stripped-on-open', description: 'The context-leading-bom envelope; the opener requires the same strings without their leading U+FEFF.',
    envelope: bomEnv, open: { identities: [alice], context: BOM_CONTEXT.map(([k, v]) => [k.replace(/^\uFEFF/, ''), v.replace(/^\uFEFF/, '')] as [string, string]) },
    error: 'KW_CONTEXT_MISMATCH',
  });
  await negative({
    name: 'kms-only-no-client', description: 'An envelope whose only stanza is kms; the opener holds only an x25519 identity (no key-service client).',
    envelope: await sealTo(HELLO, { recipients: [kmsR] }), open: { identities: [alice] }, error: 'KW_KMS_UNAVAILABLE',
  });
  await negative({
    name: 'too-many-anonymous-trials',
    description: '65 anonymous x25519 stanzas; the opener\'s identity opens the 65th, one more trial decryption than the default bound of 64.',
    envelope: await sealTo(HELLO, { recipients: [...decoys, aliceR], anonymous: true }), open: { identities: [alice] }, error: 'KW_TOO_MANY_TRIALS',
  });
  await negative({
    name: 'too-many-anonymous-trials-custom-bound',
    description: 'Three anonymous x25519 stanzas, the opener\'s is the third; the opener bounds trials at 2.',
    envelope: await sealTo(HELLO, { recipients: [decoys[0]!, decoys[1]!, aliceR], anonymous: true }), open: { identities: [alice], maxAnonymousTrials: 2 },
    error: 'KW_TOO_MANY_TRIALS',
  });
}

// Armor.
{
  // An envelope whose length is not a multiple of 3, so its base64 ends in padding.
  let padded = small;
  for (let extra = 1; padded.length % 3 === 0; extra++) padded = await sealTo(concat(HELLO, new Uint8Array(extra)), { recipients: [aliceR] });
  const armored = armor(padded);
  await negative({ name: 'armor-crlf', description: 'The armored form with CRLF line endings (only LF is canonical).', envelope: armored.replaceAll('\n', '\r\n'), open: { identities: [alice] }, error: 'KW_ARMOR_INVALID' });
  const lines = armored.split('\n');
  const lastBody = lines.length - 3; // …, last base64 line, END, ''
  const last = lines[lastBody]!;
  assert.ok(last.endsWith('='), 'the armored test envelope needs padding for the non-canonical case');
  const i = last.indexOf('=') - 1;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bumped = last.slice(0, i) + alphabet[alphabet.indexOf(last[i]!) ^ 1]! + last.slice(i + 1); // sets a padding bit
  await negative({
    name: 'armor-non-canonical-base64', description: 'The last base64 character changed so that the unused padding bits are not zero (non-canonical base64).',
    envelope: [...lines.slice(0, lastBody), bumped, ...lines.slice(lastBody + 1)].join('\n'), open: { identities: [alice] }, error: 'KW_ARMOR_INVALID',
  });
  await negative({
    name: 'armor-short-line', description: 'The first base64 line split after 63 characters (lines must be 64 columns).',
    envelope: [lines[0]!, lines[1]!.slice(0, 63), lines[1]!.slice(63) + lines[2]!, ...lines.slice(3)].join('\n'), open: { identities: [alice] }, error: 'KW_ARMOR_INVALID',
  });
  await negative({ name: 'armor-leading-garbage', description: 'A line of text before the BEGIN line.', envelope: 'Subject: secret\n' + armored, open: { identities: [alice] }, error: 'KW_ARMOR_INVALID' });
}

// ---------------------------------------------------------------------------
// Write

const NOTES_COMMON = [
  'Generated once by scripts/gen-vectors.ts (which documents how each vector was made) and committed; regenerating changes the envelope bytes (fresh salts, data keys and encapsulations) but not the vectors\' names or expectations.',
  'All key strings are test keys derived from public labels: never use them for real data.',
  'Open options: identities are tried in order; "passphrase" is an scrypt identity; "verify" requires a valid signature by one of the keys; "context" is the context the opener requires (absent: the empty context); "any_context" skips the context check; "max_anonymous_trials" bounds anonymous trial decryptions (default 64).',
  `Large plaintexts are given as plaintext_length, plaintext_pattern ("${PATTERN_DESCRIPTION}": byte i of the plaintext is i mod 251) and plaintext_sha256.`,
];

function write<V extends VectorBase>(kind: 'positive' | 'negative', vectors: V[], notes: string[]): void {
  const file: VectorFile<V> = { format: 'keyward envelope', version: 1, kind, generator: GENERATOR, notes: [...NOTES_COMMON, ...notes], vectors };
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(new URL(VECTOR_FILES[kind], OUT_DIR), JSON.stringify(file, null, 2) + '\n');
}

write('positive', positives, ['Each vector opens to its plaintext; "expected" is what the open reports besides it.']);
write('negative', negatives, ['Opening each vector must fail with exactly expected_error (a KeywardError code, see docs/errors.md); no plaintext may be released.']);
console.log(`wrote ${positives.length} positive and ${negatives.length} negative vectors`);
