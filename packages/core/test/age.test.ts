/**
 * The age conformance suite (C2SP CCTV, age/testdata): every vector is its own
 * test case, and its expected outcome is asserted — the payload hash on
 * success, the mapped KeywardError code on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import type { KeywardErrorCode } from '../src/errors.js';
import { KeywardError } from '../src/errors.js';
import { ageOpen, isAgeFile, parseAgeIdentity, type AgeIdentity } from '../src/age/index.js';
import { openAgeTo } from '../src/age/open.js';
import { encodeHeaderForMac, parseHeader } from '../src/age/format.js';
import { armorDecode, armorEncode } from '../src/age/armor.js';

// The shared/ folder sits beside the repository root (../shared from the checkout).
const VECTOR_DIR = new URL('../../../../shared/vectors/age-cctv/testdata/', import.meta.url);
const EXPECTED_VECTOR_COUNT = 143; // see shared/vectors/age-cctv/SOURCES.md
/** The vectors that carry no identity or passphrase (they fail before one is needed). */
const WITHOUT_KEYS = ['armor_empty', 'empty'];
/** An unrelated identity (the spec's example), passed for those vectors since ageOpen needs key material. */
const FALLBACK_IDENTITY = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';

type Expectation = 'success' | 'header failure' | 'payload failure' | 'armor failure' | 'HMAC failure' | 'no match';

/** Which KeywardError codes each CCTV failure kind may map to. */
const ALLOWED_CODES: Record<Exclude<Expectation, 'success'>, readonly KeywardErrorCode[]> = {
  'header failure': ['KW_AGE_MALFORMED', 'KW_SCRYPT_WORK_FACTOR', 'KW_SCRYPT_NOT_ALONE', 'KW_TRUNCATED'],
  'payload failure': ['KW_PAYLOAD_AUTH_FAILED', 'KW_TRUNCATED', 'KW_TRAILING_DATA', 'KW_AGE_MALFORMED'],
  'armor failure': ['KW_ARMOR_INVALID'],
  'HMAC failure': ['KW_AGE_HMAC_MISMATCH'],
  'no match': ['KW_NO_IDENTITY_MATCHED', 'KW_WRONG_PASSPHRASE'],
};

/** The code each failure kind produces unless the vector is listed in CODE_OVERRIDES. */
const DEFAULT_CODE: Record<Exclude<Expectation, 'success'>, KeywardErrorCode> = {
  'header failure': 'KW_AGE_MALFORMED',
  'payload failure': 'KW_PAYLOAD_AUTH_FAILED',
  'armor failure': 'KW_ARMOR_INVALID',
  'HMAC failure': 'KW_AGE_HMAC_MISMATCH',
  'no match': 'KW_NO_IDENTITY_MATCHED',
};

/** Vectors whose exact code is more specific than the default of their kind. */
const CODE_OVERRIDES: Record<string, KeywardErrorCode> = {
  // header failure
  scrypt_and_x25519: 'KW_SCRYPT_NOT_ALONE',
  scrypt_double: 'KW_SCRYPT_NOT_ALONE',
  scrypt_work_factor_23: 'KW_SCRYPT_WORK_FACTOR', // above the default limit of 22
  scrypt_work_factor_overflow: 'KW_SCRYPT_WORK_FACTOR', // syntactically a number, far above the limit
  stream_no_nonce: 'KW_TRUNCATED', // header ends where the payload nonce should start
  stream_short_nonce: 'KW_TRUNCATED',
  // no match (passphrase files report the wrong passphrase)
  scrypt_bad_tag: 'KW_WRONG_PASSPHRASE',
  scrypt_no_match: 'KW_WRONG_PASSPHRASE',
  scrypt_work_factor_wrong: 'KW_WRONG_PASSPHRASE',
  // payload failure
  armor_garbage_encoded: 'KW_TRAILING_DATA',
  stream_last_chunk_empty: 'KW_AGE_MALFORMED',
  stream_missing_tag: 'KW_TRUNCATED',
  stream_no_chunks: 'KW_TRUNCATED',
  stream_no_final: 'KW_TRUNCATED',
  stream_no_final_full: 'KW_TRUNCATED',
  stream_no_final_two_chunks: 'KW_TRUNCATED',
  stream_no_final_two_chunks_full: 'KW_TRUNCATED',
  stream_short_chunk: 'KW_TRUNCATED', // fewer bytes than a tag
  stream_short_second_chunk: 'KW_TRUNCATED',
  stream_trailing_garbage_long: 'KW_TRAILING_DATA',
  stream_trailing_garbage_short: 'KW_TRAILING_DATA',
  stream_two_final_chunks: 'KW_TRAILING_DATA',
  stream_two_final_chunks_full: 'KW_TRAILING_DATA',
  stream_two_final_chunks_second: 'KW_TRAILING_DATA',
};

interface Vector {
  expect: Expectation;
  payload?: string;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  file: Uint8Array;
}

function parseVector(raw: Uint8Array): Vector {
  let split = -1;
  for (let i = 0; i + 1 < raw.length; i++) {
    if (raw[i] === 0x0a && raw[i + 1] === 0x0a) {
      split = i;
      break;
    }
  }
  assert.ok(split > 0, 'vector has a textual header followed by a blank line');
  const v: Vector = { expect: 'success', identities: [], passphrases: [], armored: false, file: new Uint8Array() };
  let compressed = false;
  for (const line of Buffer.from(raw.subarray(0, split)).toString('utf8').split('\n')) {
    const colon = line.indexOf(': ');
    assert.ok(colon > 0, `header line "${line}"`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === 'expect') v.expect = value as Expectation;
    else if (key === 'payload') v.payload = value;
    else if (key === 'identity') v.identities.push(value);
    else if (key === 'passphrase') v.passphrases.push(value);
    else if (key === 'armored') v.armored = value === 'yes';
    else if (key === 'compressed') {
      assert.equal(value, 'zlib');
      compressed = true;
    }
  }
  const body = raw.subarray(split + 2);
  v.file = compressed ? new Uint8Array(inflateSync(body)) : body.slice();
  return v;
}

const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Opens the file with every identity and each passphrase in turn (like age with several -p). */
async function openVector(v: Vector, identities: AgeIdentity[]): Promise<{ released: Uint8Array; error?: unknown }> {
  const attempts = v.passphrases.length > 0 ? v.passphrases.map((p) => ({ identities, passphrase: p })) : [{ identities }];
  let last: { released: Uint8Array; error?: unknown } = { released: new Uint8Array() };
  for (const opts of attempts) {
    const chunks: Buffer[] = [];
    try {
      await openAgeTo(v.file, opts, (c) => chunks.push(Buffer.from(c)));
      return { released: Buffer.concat(chunks) };
    } catch (error) {
      last = { released: Buffer.concat(chunks), error };
      if (!(error instanceof KeywardError && error.code === 'KW_WRONG_PASSPHRASE')) return last;
    }
  }
  return last;
}

let names: string[] = [];
let listError: unknown;
try {
  names = readdirSync(VECTOR_DIR).sort();
} catch (e) {
  listError = e;
}

void test('CCTV age vectors are present and complete', () => {
  assert.equal(listError, undefined, `cannot read ${fileURLToPath(VECTOR_DIR)}: ${String(listError)}`);
  assert.equal(names.length, EXPECTED_VECTOR_COUNT);
  for (const name of Object.keys(CODE_OVERRIDES)) assert.ok(names.includes(name), `override for unknown vector ${name}`);
});

for (const name of names) {
  void test(`CCTV age vector ${name}`, async () => {
    const v = parseVector(new Uint8Array(readFileSync(new URL(name, VECTOR_DIR))));
    const identities = v.identities.map((s) => parseAgeIdentity(s));
    if (identities.length === 0 && v.passphrases.length === 0) {
      assert.ok(WITHOUT_KEYS.includes(name), 'vector has key material');
      identities.push(parseAgeIdentity(FALLBACK_IDENTITY));
    }

    const { released, error } = await openVector(v, identities);

    if (v.expect === 'success') {
      assert.equal(error, undefined, `expected success, got ${String(error)}`);
      assert.equal(sha256hex(released), v.payload);
      assert.ok(isAgeFile(v.file), 'isAgeFile recognizes the file');
      // The public API agrees with the streaming core.
      const pt = await ageOpen(v.file, { identities, passphrase: v.passphrases[0] });
      assert.equal(sha256hex(pt), v.payload);
    } else {
      assert.ok(error instanceof KeywardError, `expected a KeywardError for "${v.expect}", got ${String(error)}`);
      const allowed = ALLOWED_CODES[v.expect];
      assert.ok(allowed !== undefined, `unknown expectation "${v.expect}"`);
      assert.ok(allowed.includes(error.code), `"${v.expect}" must map to one of ${allowed.join(', ')}, got ${error.code}: ${error.message}`);
      assert.equal(error.code, CODE_OVERRIDES[name] ?? DEFAULT_CODE[v.expect], error.message);
      // Only authenticated plaintext may have been released, and exactly what the kit expects.
      if (v.payload !== undefined) assert.equal(sha256hex(released), v.payload, 'released plaintext prefix');
      // The public all-or-nothing API fails with the same code.
      await assert.rejects(ageOpen(v.file, { identities, passphrase: v.passphrases.at(-1) }), (e: unknown) => e instanceof KeywardError && e.code === error.code);
    }

    // Round trips the kit suggests: armor decode/encode, and header decode/encode.
    let binary = v.file;
    if (v.armored && v.expect !== 'armor failure') {
      binary = armorDecode(v.file);
      const normalized = Buffer.from(v.file).toString('latin1').trim().replaceAll('\r\n', '\n') + '\n';
      assert.equal(Buffer.from(armorEncode(binary)).toString('latin1'), normalized, 'armor re-encodes canonically');
    }
    if (v.expect !== 'header failure' && v.expect !== 'armor failure') {
      const header = parseHeader(binary);
      assert.deepEqual(encodeHeaderForMac(header.stanzas), header.macInput, 'header re-encodes byte for byte');
    }
  });
}
