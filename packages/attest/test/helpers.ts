/**
 * Shared test helpers. The Nitro vectors live in `shared/vectors/` beside the
 * repository (CI clones the repository with `shared/` next to it), so resolve
 * them relative to this file, never by absolute path.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttestError, type AttestErrorCode } from '../src/index.js';
import { concat, decodeCbor, encodeBytes, encodeHead, encodeText } from '../src/cbor.js';

export const VECTORS = new URL('../../../../shared/vectors/', import.meta.url);

/** Raw bytes of a vector file under shared/vectors/. */
export function readVectorBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(path, VECTORS)));
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A copy of `b` with byte `i` XORed with `mask` (default 0x01). */
export function flip(b: Uint8Array, i: number, mask = 0x01): Uint8Array {
  const c = new Uint8Array(b);
  c[i]! ^= mask;
  return c;
}

/** Asserts that `fn` throws an AttestError with `code`; returns the error. */
export function throwsAttest(fn: () => unknown, code: AttestErrorCode): AttestError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AttestError, `expected an AttestError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected an AttestError (${code}), nothing was thrown`);
}

/** Index of `needle` in `hay`, or throws. */
export function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const i = Buffer.from(hay).indexOf(Buffer.from(needle), from);
  assert.ok(i >= 0, 'needle not found');
  return i;
}

// --- test certificates made with the openssl command ---------------------------------

/** A certificate and its private key (PEM). */
export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly der: Uint8Array;
}

export type KeyAlg = 'p256' | 'p384' | 'rsa-pss';

/** Options for {@link makeCert}. */
export interface MakeCertOptions {
  readonly subject: string;
  readonly alg: KeyAlg;
  readonly ca: boolean;
  /** Issuer; self-signed when absent. */
  readonly issuer?: TestCert;
  /** Extra extension lines for openssl's config (`OID=DER:…`). */
  readonly extensions?: readonly string[];
}

/**
 * Makes a test certificate with the `openssl` command (test time only:
 * node:crypto cannot issue certificates).
 */
export function makeCert(o: MakeCertOptions): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-cert-'));
  try {
    const key = join(dir, 'key.pem');
    if (o.alg === 'rsa-pss') execFileSync('openssl', ['genpkey', '-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key], { stdio: 'pipe' });
    else execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${o.alg === 'p256' ? 'P-256' : 'P-384'}`, '-out', key], { stdio: 'pipe' });
    const ext = [
      o.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=critical,CA:FALSE',
      o.ca ? 'keyUsage=critical,keyCertSign,cRLSign' : 'keyUsage=critical,digitalSignature',
      'subjectKeyIdentifier=hash',
      ...(o.issuer ? ['authorityKeyIdentifier=keyid'] : []),
      ...(o.extensions ?? []),
    ];
    writeFileSync(join(dir, 'ext.cnf'), `[ext]\n${ext.join('\n')}\n`);
    execFileSync('openssl', ['req', '-new', '-key', key, '-subj', o.subject, '-out', join(dir, 'req.csr')], { stdio: 'pipe' });
    const issuerCert = join(dir, 'issuer.pem');
    const issuerKey = join(dir, 'issuer.key');
    if (o.issuer) {
      writeFileSync(issuerCert, o.issuer.certPem);
      writeFileSync(issuerKey, o.issuer.keyPem);
    }
    const args = ['x509', '-req', '-in', join(dir, 'req.csr'), '-out', join(dir, 'cert.pem'), '-extfile', join(dir, 'ext.cnf'), '-extensions', 'ext', '-sha384', '-days', '3650', '-set_serial', String(Date.now() % 1e9)];
    if (o.issuer) args.push('-CA', issuerCert, '-CAkey', issuerKey);
    else args.push('-signkey', key);
    execFileSync('openssl', args, { stdio: 'pipe' });
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const der = execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-outform', 'DER']);
    return { certPem, keyPem: readFileSync(key, 'utf8'), der: new Uint8Array(der) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- a tiny CBOR encoder for building (and breaking) test documents -------------------

/** A value to encode; `{ raw }` is spliced in as already-encoded bytes. */
export type Enc = number | string | Uint8Array | boolean | null | Enc[] | Map<number | string, Enc> | { raw: Uint8Array };

/** Encodes `v` in preferred (shortest) form, maps in insertion order. */
export function cbor(v: Enc): Uint8Array {
  if (v === null) return Uint8Array.of(0xf6);
  if (v === true) return Uint8Array.of(0xf5);
  if (v === false) return Uint8Array.of(0xf4);
  if (typeof v === 'number') return v >= 0 ? encodeHead(0, v) : encodeHead(1, -1 - v);
  if (typeof v === 'string') return encodeText(v);
  if (v instanceof Uint8Array) return encodeBytes(v);
  if (Array.isArray(v)) return concat(encodeHead(4, v.length), ...v.map(cbor));
  if (v instanceof Map) return concat(encodeHead(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)]));
  return v.raw;
}

/** A COSE_Sign1 ES384 over `payload`, signed with `keyPem` (P-384). */
export function coseSign1(payload: Uint8Array, keyPem: string, protectedHeader: Uint8Array = Uint8Array.of(0xa1, 0x01, 0x38, 0x22)): Uint8Array {
  const tbs = concat(encodeHead(4, 4), encodeText('Signature1'), encodeBytes(protectedHeader), encodeBytes(new Uint8Array(0)), encodeBytes(payload));
  const sig = sign('sha384', tbs, { key: createPrivateKey(keyPem), dsaEncoding: 'ieee-p1363' });
  return cbor([protectedHeader, new Map(), payload, new Uint8Array(sig)]);
}

/** Decodes a real document back into its parts (test-side, lenient limits). */
export function splitNitro(doc: Uint8Array): { protectedHeader: Uint8Array; payload: Map<number | string, unknown>; payloadBytes: Uint8Array; signature: Uint8Array } {
  const outer = decodeCbor(doc, { maxBytes: 1 << 20, maxDepth: 8, maxItems: 1000 }) as [Uint8Array, unknown, Uint8Array, Uint8Array];
  const payload = decodeCbor(outer[2], { maxBytes: 1 << 20, maxDepth: 8, maxItems: 1000 }) as Map<number | string, unknown>;
  return { protectedHeader: outer[0], payload, payloadBytes: outer[2], signature: outer[3] };
}

/** Re-assembles a COSE_Sign1 from parts without signing. */
export function assembleCose(protectedHeader: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  return cbor([protectedHeader, new Map(), payload, signature]);
}
