/**
 * (b) Small messages: 1 KiB to one X25519 recipient, seal and open measured
 * separately, on one thread. Keys are generated and parsed once; every seal
 * makes a fresh ephemeral key, as each scheme requires.
 */
import {
  createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject,
} from 'node:crypto';
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier,
} from '@aws-crypto/client-node';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { CompactEncrypt, compactDecrypt, generateKeyPair } from 'jose';
import sodium from 'libsodium-wrappers';
import { open, seal } from '@keyward/core';
import type { Fixtures } from '../lib/fixtures.js';
import { fmt, opsRates, rateStat, table, type Stat } from '../lib/harness.js';

export interface SmallRow {
  readonly name: string;
  readonly seal: Stat | null;
  readonly open: Stat | null;
  /** Operations per second of CPU time (best of the rounds). */
  readonly sealCpu?: number;
  readonly openCpu?: number;
  readonly note?: string;
}

interface Candidate {
  readonly name: string;
  readonly note: string;
  seal(): Promise<unknown>;
  open(): Promise<unknown>;
}

const SIZE = 1024;

/**
 * The floor: what any X25519 + AES-256-GCM scheme must do in node:crypto, and
 * nothing else — an ephemeral key pair and a DH to seal; importing the
 * ephemeral public key (JWK) and a DH to open; AES-256-GCM of 1 KiB under the
 * raw DH output (no KDF, no header, no key commitment).
 */
function floor(): Candidate {
  const recipient = generateKeyPairSync('x25519');
  const pt = randomBytes(SIZE);
  const nonce = Buffer.alloc(12);
  const sealOnce = () => {
    // The public key is encoded by the key-generation job itself: exporting it
    // afterwards can deadlock Node 20 (see platform/node.ts, x25519.generate).
    const eph = generateKeyPairSync('x25519', { publicKeyEncoding: { type: 'spki', format: 'jwk' } });
    const x = (eph.publicKey as unknown as { x: string }).x;
    const key = diffieHellman({ privateKey: eph.privateKey, publicKey: recipient.publicKey });
    const c = createCipheriv('aes-256-gcm', key, nonce);
    const ct = c.update(pt);
    c.final();
    return { x, ct, tag: c.getAuthTag() };
  };
  const msg = sealOnce();
  return {
    name: 'floor: raw X25519 + AES-256-GCM (node:crypto)', note: 'generateKeyPairSync (JWK public key) + DH + GCM; open: JWK import + DH + GCM',
    seal: () => Promise.resolve(sealOnce()),
    open() {
      const eph: KeyObject = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: msg.x }, format: 'jwk' });
      const key = diffieHellman({ privateKey: recipient.privateKey, publicKey: eph });
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAuthTag(msg.tag);
      const out = d.update(msg.ct);
      d.final();
      return Promise.resolve(out);
    },
  };
}

export async function candidates(f: Fixtures): Promise<Candidate[]> {
  const pt = randomBytes(SIZE);
  const list: Candidate[] = [];
  {
    const env = await seal(pt, { recipients: [f.recipient] });
    list.push({
      name: 'Keyward', note: 'x25519 stanza (HPKE), AES-256-GCM payload, committing header',
      seal: () => seal(pt, { recipients: [f.recipient] }),
      open: () => open(env, { identities: [f.identity] }),
    });
  }
  list.push(floor());
  {
    const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const kp = await suite.kem.generateKeyPair();
    const { enc, ct } = await suite.seal({ recipientPublicKey: kp.publicKey }, pt);
    list.push({
      name: '@hpke/core + @hpke/dhkem-x25519', note: 'HPKE base mode single-shot, X25519 in JS, AES via WebCrypto',
      seal: () => suite.seal({ recipientPublicKey: kp.publicKey }, pt),
      open: () => suite.open({ recipientKey: kp.privateKey, enc }, ct),
    });
  }
  {
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519' });
    const header = { alg: 'ECDH-ES+A256KW', enc: 'A256GCM' };
    const jwe = await new CompactEncrypt(pt).setProtectedHeader(header).encrypt(publicKey);
    list.push({
      name: 'jose (ECDH-ES+A256KW, A256GCM)', note: 'compact JWE, WebCrypto',
      seal: () => new CompactEncrypt(pt).setProtectedHeader(header).encrypt(publicKey),
      open: () => compactDecrypt(jwe, privateKey),
    });
  }
  {
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const keyring = new RawAesKeyringNode({
      keyName: 'bench', keyNamespace: 'bench', unencryptedMasterKey: randomBytes(32),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    const suiteId = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
    const { result } = await encrypt(keyring, pt, { suiteId });
    list.push({
      name: '@aws-crypto/client-node', note: 'raw AES keyring (symmetric: no public-key step), committing suite, unsigned',
      seal: () => encrypt(keyring, pt, { suiteId }),
      open: () => decrypt(keyring, result),
    });
  }
  {
    await sodium.ready;
    const kp = sodium.crypto_box_keypair();
    const boxed = sodium.crypto_box_seal(pt, kp.publicKey);
    list.push({
      name: 'libsodium crypto_box_seal', note: 'X25519 + XSalsa20-Poly1305, WebAssembly',
      seal: () => Promise.resolve(sodium.crypto_box_seal(pt, kp.publicKey)),
      open: () => Promise.resolve(sodium.crypto_box_seal_open(boxed, kp.publicKey, kp.privateKey)),
    });
  }
  {
    const identity = await generateX25519Identity();
    const e = new Encrypter();
    e.addRecipient(await identityToRecipient(identity));
    const d = new Decrypter();
    d.addIdentity(identity);
    const file = await e.encrypt(pt);
    list.push({
      name: 'age-encryption (typage)', note: 'X25519 + ChaCha20-Poly1305, JS',
      seal: () => e.encrypt(pt),
      open: () => d.decrypt(file),
    });
  }
  return list;
}

export async function small(f: Fixtures, rounds: number, ms: number, log: (s: string) => void): Promise<SmallRow[]> {
  const list = await candidates(f);
  const samples = new Map(list.map((c) => [c, { seal: [] as number[], open: [] as number[], sealCpu: 0, openCpu: 0, error: '' }]));
  for (let round = 0; round < rounds; round++) {
    for (const c of list) {
      const s = samples.get(c)!;
      if (s.error) continue;
      try {
        const sealed = await opsRates(() => c.seal(), ms);
        const opened = await opsRates(() => c.open(), ms);
        s.seal.push(sealed.wall);
        s.open.push(opened.wall);
        s.sealCpu = Math.max(s.sealCpu, sealed.cpu);
        s.openCpu = Math.max(s.openCpu, opened.cpu);
        log(`  ${c.name}: seal ${fmt.rate(sealed.wall)}/s (${fmt.rate(sealed.cpu)}/CPU-s), open ${fmt.rate(opened.wall)}/s (${fmt.rate(opened.cpu)}/CPU-s)`);
      } catch (e) {
        s.error = (e as Error).message;
      }
    }
  }
  return list.map((c) => {
    const s = samples.get(c)!;
    return s.error
      ? { name: c.name, seal: null, open: null, note: `failed: ${s.error}` }
      : { name: c.name, seal: rateStat(s.seal), open: rateStat(s.open), sealCpu: s.sealCpu, openCpu: s.openCpu, note: c.note };
  });
}

export function smallTable(rows: readonly SmallRow[]): string {
  const k = rows.find((r) => r.name === 'Keyward');
  const cell = (s: Stat | null) => (s ? `${fmt.rate(s.best)} (${fmt.rate(s.median)})` : '—');
  const cpu = (x: number | undefined) => (x ? fmt.rate(x) : '—');
  const body = rows.map((r) => [
    r.name, cell(r.seal), cell(r.open), cpu(r.sealCpu), cpu(r.openCpu),
    k?.seal && r.seal ? fmt.ratio(k.seal.best / r.seal.best) : '—',
    k?.open && r.open ? fmt.ratio(k.open.best / r.open.best) : '—',
    r.note ?? '',
  ]);
  return `(b) 1 KiB to one X25519 recipient, one thread — ops/s of wall time, best of the rounds (median); ops per CPU-second, best\n\n${
    table(['implementation', 'seal/s', 'open/s', 'seal/CPU-s', 'open/CPU-s', 'Keyward ÷ row, seal', '÷ row, open', 'notes'], body)}`;
}
