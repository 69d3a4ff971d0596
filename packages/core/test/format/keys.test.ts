/**
 * Key string encodings: Bech32 (BIP 173) with a type prefix; public strings
 * lowercase, secret strings uppercase. Round trips, bad checksums, wrong case,
 * wrong type, wrong length, invalid points; key ids pinned to their definition.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { bech32, bech32m } from '@scure/base';
import {
  classifyKeyString, generateIdentity, parseIdentity, parseIdentityFile, parseRecipient, parseSigningKey, parseVerifyingKey,
} from '../../src/identities.js';
import { encodeKey } from '../../src/keys/encoding.js';
import { SigningKey, VerifyingKey } from '../../src/keys/signing.js';
import { HpkeIdentity, HpkeRecipient, KEM_TYPES, PUBLIC_HRP, SECRET_HRP, type KemType } from '../../src/recipients/hpke.js';
import { rejectsWith, throwsWith } from './helpers.js';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

/** The string with its data character at `i` (counted from the end) replaced by another valid one. */
function corrupt(s: string, fromEnd: number): string {
  const i = s.length - 1 - fromEnd;
  const c = s[i]!;
  const lower = c.toLowerCase();
  const next = CHARSET[(CHARSET.indexOf(lower) + 1) % CHARSET.length]!;
  return s.slice(0, i) + (c === lower ? next : next.toUpperCase()) + s.slice(i + 1);
}

const ids = Object.fromEntries(await Promise.all(KEM_TYPES.map(async (t) => [t, await generateIdentity(t)] as const))) as Record<KemType, HpkeIdentity>;
const signers = { ed25519: await SigningKey.generate('ed25519'), hybrid: await SigningKey.generate('ed25519-mldsa65') };

void describe('key strings', () => {
  for (const type of KEM_TYPES) {
    void test(`${type}: identity and recipient strings round-trip, with the right prefix and case`, async () => {
      const id = ids[type];
      const idText = id.toString();
      const r = await id.recipient();
      const rText = r.toString();
      assert.ok(idText.startsWith(SECRET_HRP[type] + '1') && idText === idText.toUpperCase(), idText.slice(0, 20));
      assert.ok(rText.startsWith(PUBLIC_HRP[type] + '1') && rText === rText.toLowerCase(), rText.slice(0, 20));
      const id2 = await parseIdentity(idText);
      assert.equal(id2.type, type);
      assert.deepEqual(id2.publicKey, id.publicKey);
      assert.deepEqual(id2.keyId, id.keyId);
      assert.equal(id2.toString(), idText);
      const r2 = await parseRecipient(rText);
      assert.equal(r2.type, type);
      assert.deepEqual(r2.publicKey, r.publicKey);
      assert.deepEqual(r2.keyId, id.keyId);
      assert.equal(r2.toString(), rText);
      assert.equal(classifyKeyString(idText), 'identity');
      assert.equal(classifyKeyString(rText), 'recipient');
      // Surrounding whitespace is trimmed.
      assert.equal((await parseRecipient(`  ${rText}\n`)).toString(), rText);
      assert.equal((await parseIdentity(`\t${idText} `)).toString(), idText);
    });

    void test(`${type}: a changed character anywhere (bad checksum) is KW_INVALID_KEY_STRING`, async () => {
      const idText = ids[type].toString();
      const rText = (await ids[type].recipient()).toString();
      for (const fromEnd of [0, 3, 6, 10, Math.floor(rText.length / 2), rText.length - PUBLIC_HRP[type].length - 2]) {
        await rejectsWith(() => parseRecipient(corrupt(rText, fromEnd)), 'KW_INVALID_KEY_STRING', `recipient, char ${fromEnd} from the end`);
      }
      for (const fromEnd of [0, 5, 20]) {
        await rejectsWith(() => parseIdentity(corrupt(idText, fromEnd)), 'KW_INVALID_KEY_STRING', `identity, char ${fromEnd} from the end`);
      }
      // Dropped or swapped characters, too.
      await rejectsWith(() => parseRecipient(rText.slice(0, -1)), 'KW_INVALID_KEY_STRING');
      const i = rText.length - 8;
      if (rText[i] !== rText[i + 1]) await rejectsWith(() => parseRecipient(rText.slice(0, i) + rText[i + 1]! + rText[i]! + rText.slice(i + 2)), 'KW_INVALID_KEY_STRING');
    });

    void test(`${type}: wrong case is KW_INVALID_KEY_STRING`, async () => {
      const idText = ids[type].toString();
      const rText = (await ids[type].recipient()).toString();
      await rejectsWith(() => parseRecipient(rText.toUpperCase()), 'KW_INVALID_KEY_STRING', 'uppercase recipient');
      await rejectsWith(() => parseIdentity(idText.toLowerCase()), 'KW_INVALID_KEY_STRING', 'lowercase identity');
      const mixed = rText.slice(0, -3) + rText.slice(-3).toUpperCase();
      if (mixed !== rText) await rejectsWith(() => parseRecipient(mixed), 'KW_INVALID_KEY_STRING', 'mixed case');
      assert.equal(classifyKeyString(rText.toUpperCase()), 'unknown');
      assert.equal(classifyKeyString(idText.toLowerCase()), 'unknown');
    });

    void test(`${type}: a key of the wrong length is KW_INVALID_KEY_STRING`, async () => {
      const pk = (await ids[type].recipient()).publicKey;
      await rejectsWith(() => parseRecipient(encodeKey(PUBLIC_HRP[type], pk.subarray(1))), 'KW_INVALID_KEY_STRING');
      await rejectsWith(() => parseIdentity(encodeKey(SECRET_HRP[type], new Uint8Array(33).fill(1), true)), 'KW_INVALID_KEY_STRING');
    });
  }

  void test('wrong type: each parser refuses the other kinds of key strings', async () => {
    const rText = (await ids.x25519.recipient()).toString();
    const idText = ids.x25519.toString();
    const vkText = signers.ed25519.verifyingKey.toString();
    const skText = signers.ed25519.toString();
    await rejectsWith(() => parseRecipient(idText), 'KW_INVALID_KEY_STRING', 'identity as recipient');
    await rejectsWith(() => parseRecipient(vkText), 'KW_INVALID_KEY_STRING', 'verifying key as recipient');
    await rejectsWith(() => parseIdentity(rText), 'KW_INVALID_KEY_STRING', 'recipient as identity');
    await rejectsWith(() => parseIdentity(skText), 'KW_INVALID_KEY_STRING', 'signing key as identity');
    throwsWith(() => parseVerifyingKey(rText), 'KW_INVALID_KEY_STRING', 'recipient as verifying key');
    throwsWith(() => parseVerifyingKey(skText), 'KW_INVALID_KEY_STRING', 'signing key as verifying key');
    await rejectsWith(() => parseSigningKey(idText), 'KW_INVALID_KEY_STRING', 'identity as signing key');
    await rejectsWith(() => parseSigningKey(vkText), 'KW_INVALID_KEY_STRING', 'verifying key as signing key');
    await rejectsWith(() => HpkeRecipient.parse(rText, 'p256'), 'KW_INVALID_KEY_STRING', 'x25519 string as p256');
    await rejectsWith(() => HpkeIdentity.parse(idText, 'xwing'), 'KW_INVALID_KEY_STRING', 'x25519 identity as xwing');
    await rejectsWith(() => parseRecipient('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'), 'KW_INVALID_KEY_STRING', 'age recipient');
    await rejectsWith(() => parseRecipient(''), 'KW_INVALID_KEY_STRING', 'empty');
    await rejectsWith(() => parseRecipient('kwx25519'), 'KW_INVALID_KEY_STRING', 'prefix only');
    // An x25519 key under the xwing prefix has the wrong length.
    const x25519Pk = (await ids.x25519.recipient()).publicKey;
    await rejectsWith(() => parseRecipient(encodeKey(PUBLIC_HRP.xwing, x25519Pk)), 'KW_INVALID_KEY_STRING');
  });

  void test('Bech32, not Bech32m: the same data under the Bech32m checksum is refused', async () => {
    const pk = (await ids.x25519.recipient()).publicKey;
    const m = bech32m.encode(PUBLIC_HRP.x25519, bech32m.toWords(pk), false);
    await rejectsWith(() => parseRecipient(m), 'KW_INVALID_KEY_STRING');
    assert.equal((await parseRecipient(bech32.encode(PUBLIC_HRP.x25519, bech32.toWords(pk), false))).toString(), (await ids.x25519.recipient()).toString());
  });

  void test('P-256: a point off the curve, the point at infinity and compressed points are refused; so are secret keys 0 and ≥ n', async () => {
    const off = new Uint8Array(65); off[0] = 4; off[64] = 1;
    await rejectsWith(() => parseRecipient(encodeKey(PUBLIC_HRP.p256, off)), 'KW_INVALID_KEY_STRING', 'off the curve');
    const zero = new Uint8Array(65);
    await rejectsWith(() => parseRecipient(encodeKey(PUBLIC_HRP.p256, zero)), 'KW_INVALID_KEY_STRING', 'all zero');
    const pk = (await ids.p256.recipient()).publicKey;
    const compressedPrefix = pk.slice(); compressedPrefix[0] = 2;
    await rejectsWith(() => parseRecipient(encodeKey(PUBLIC_HRP.p256, compressedPrefix)), 'KW_INVALID_KEY_STRING', 'wrong prefix byte');
    await rejectsWith(() => parseIdentity(encodeKey(SECRET_HRP.p256, new Uint8Array(32), true)), 'KW_INVALID_KEY_STRING', 'sk = 0');
    await rejectsWith(() => parseIdentity(encodeKey(SECRET_HRP.p256, new Uint8Array(32).fill(0xff), true)), 'KW_INVALID_KEY_STRING', 'sk ≥ n');
  });

  for (const [name, sk] of Object.entries(signers)) {
    void test(`${name} signer: signing and verifying key strings round-trip`, async () => {
      const skText = sk.toString();
      const vkText = sk.verifyingKey.toString();
      assert.ok(skText === skText.toUpperCase() && vkText === vkText.toLowerCase());
      assert.equal(classifyKeyString(skText), 'signing-key');
      assert.equal(classifyKeyString(vkText), 'verifying-key');
      const sk2 = await parseSigningKey(skText);
      assert.equal(sk2.alg, sk.alg);
      assert.deepEqual(sk2.keyId, sk.keyId);
      const vk2 = parseVerifyingKey(vkText);
      assert.equal(vk2.alg, sk.alg);
      assert.deepEqual(vk2.publicKey, sk.verifyingKey.publicKey);
      assert.equal(vk2.toString(), vkText);
      throwsWith(() => parseVerifyingKey(corrupt(vkText, 4)), 'KW_INVALID_KEY_STRING', 'bad checksum');
      throwsWith(() => parseVerifyingKey(vkText.toUpperCase()), 'KW_INVALID_KEY_STRING', 'uppercase verifying key');
      await rejectsWith(() => parseSigningKey(skText.toLowerCase()), 'KW_INVALID_KEY_STRING', 'lowercase signing key');
      await rejectsWith(() => parseSigningKey(corrupt(skText, 4)), 'KW_INVALID_KEY_STRING', 'bad checksum');
    });
  }

  void test('the Ed25519 and hybrid prefixes are not confused (one is a prefix of the other)', () => {
    const ed = signers.ed25519.verifyingKey.toString();
    const hy = signers.hybrid.verifyingKey.toString();
    assert.ok(hy.startsWith('kwed25519mldsa651') && ed.startsWith('kwed255191'));
    assert.equal(parseVerifyingKey(ed).alg, 'ed25519');
    assert.equal(parseVerifyingKey(hy).alg, 'ed25519-mldsa65');
    throwsWith(() => new VerifyingKey('ed25519', signers.hybrid.verifyingKey.publicKey), 'KW_INVALID_KEY_STRING');
  });

  void test('key id = SHA-256("keyward/v1 key-id" ‖ 0x00 ‖ type ‖ 0x00 ‖ public key)[0..16]', async () => {
    const expect = (type: string, pk: Uint8Array) =>
      createHash('sha256').update('keyward/v1 key-id').update(Buffer.from([0])).update(type).update(Buffer.from([0])).update(pk).digest().subarray(0, 16);
    for (const type of KEM_TYPES) {
      const r = await ids[type].recipient();
      assert.deepEqual(Buffer.from(r.keyId), expect(type, r.publicKey), type);
    }
    assert.deepEqual(Buffer.from(signers.ed25519.keyId), expect('ed25519', signers.ed25519.verifyingKey.publicKey));
    assert.deepEqual(Buffer.from(signers.hybrid.keyId), expect('ed25519-mldsa65', signers.hybrid.verifyingKey.publicKey));
  });

  void test('identity files: one key per line, # comments and blank lines ignored; an empty file is refused', async () => {
    const file = `# keys\n\n${ids.x25519.toString()}\r\n  ${ids.xwing.toString()}  \n# end\n`;
    const parsed = await parseIdentityFile(file);
    assert.deepEqual(parsed.map((i) => i.type), ['x25519', 'xwing']);
    await rejectsWith(() => parseIdentityFile('# nothing\n\n'), 'KW_INVALID_KEY_STRING');
    const rText = (await ids.x25519.recipient()).toString();
    await rejectsWith(() => parseIdentityFile(`${ids.x25519.toString()}\n${rText}\n`), 'KW_INVALID_KEY_STRING');
  });
});
