/**
 * The login profile (`keyward login`): this device's keys for the key service.
 *
 *   PROFILE/               mode 0700 (default $XDG_CONFIG_HOME/keyward, else ~/.config/keyward)
 *     device-keys.json     0600: { format: 1, signing_seed: b64u(Ed25519 seed), identity: "<Keyward identity>" }
 *     profile.json         0644: { format: 1, addresses, key_id, alg, public_key, recipient, created }
 *
 * The signing key signs data-plane requests (RFC 9421); the HPKE identity
 * (x25519) is the recipient the service seals data keys to. Neither leaves
 * the device: only the public halves are registered.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HpkeIdentity, parseIdentity } from '@keyward/core';
import { fail, withoutEcho } from './errors.js';
import { ioFailure, type Io } from './io.js';

export const PROFILE_FLAG = {
  profile: { type: 'string', value: 'DIR', help: 'the login profile directory (default ~/.config/keyward)' },
} as const;

export const KEYS_FILE = 'device-keys.json';
export const PROFILE_FILE = 'profile.json';

export interface Profile {
  readonly dir: string;
  readonly addresses: string[];
  readonly keyId: string;
  readonly publicKey: string;
  readonly recipient: string;
  readonly signingSeed: Uint8Array;
  readonly identity: HpkeIdentity;
}

export function profileDir(flag: string | undefined, io: Io): string {
  if (flag !== undefined) return path.resolve(flag);
  const xdg = io.env.XDG_CONFIG_HOME;
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(io.env.HOME ?? os.homedir(), '.config'), 'keyward');
}

/** New device keys: an Ed25519 signing seed and its public key, an x25519 identity. */
export async function newDeviceKeys(): Promise<{ seed: Uint8Array; publicKey: string; identity: HpkeIdentity; recipient: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
  const identity = await HpkeIdentity.generate('x25519');
  return { seed, publicKey: publicKey.export({ format: 'jwk' }).x!, identity, recipient: (await identity.recipient()).toString() };
}

/** The Ed25519 public key (base64url) of a 32-byte seed. */
export function ed25519PublicKey(seed: Uint8Array): string {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }).x!;
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}

export async function writeProfile(dir: string, p: { addresses: readonly string[]; keyId: string; publicKey: string; recipient: string; seed: Uint8Array; identity: HpkeIdentity }): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const keysTmp = path.join(dir, `.${KEYS_FILE}.tmp`);
    await fsp.writeFile(keysTmp, JSON.stringify({ format: 1, signing_seed: Buffer.from(p.seed).toString('base64url'), identity: p.identity.toString() }, null, 2) + '\n', { mode: 0o600 });
    await fsp.chmod(keysTmp, 0o600);
    await fsp.rename(keysTmp, path.join(dir, KEYS_FILE));
    const doc = { format: 1, addresses: p.addresses, key_id: p.keyId, alg: 'ed25519', public_key: p.publicKey, recipient: p.recipient, created: new Date().toISOString() };
    await fsp.writeFile(path.join(dir, PROFILE_FILE), JSON.stringify(doc, null, 2) + '\n', { mode: 0o644 });
  } catch (e) {
    throw ioFailure(e, 'write', `the profile in '${dir}'`);
  }
}

export async function loadProfile(dir: string): Promise<Profile> {
  let keys: { signing_seed?: unknown; identity?: unknown };
  let doc: { addresses?: unknown; key_id?: unknown; public_key?: unknown; recipient?: unknown };
  try {
    keys = JSON.parse(await fsp.readFile(path.join(dir, KEYS_FILE), 'utf8')) as typeof keys;
    doc = JSON.parse(await fsp.readFile(path.join(dir, PROFILE_FILE), 'utf8')) as typeof doc;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail('KW_INVALID_ARGUMENT', `no login profile in '${dir}': run "keyward login" first (or give --profile DIR)`);
    if (e instanceof SyntaxError) fail('KW_INVALID_ARGUMENT', `the login profile in '${dir}' is damaged (not JSON)`);
    throw ioFailure(e, 'read', `the profile in '${dir}'`);
  }
  const seed = typeof keys.signing_seed === 'string' ? Buffer.from(keys.signing_seed, 'base64url') : null;
  if (!seed || seed.length !== 32 || typeof keys.identity !== 'string' || typeof doc.key_id !== 'string' || !Array.isArray(doc.addresses)) {
    fail('KW_INVALID_ARGUMENT', `the login profile in '${dir}' is incomplete: run "keyward login --force" again`);
  }
  const identityText = keys.identity;
  const identity = await withoutEcho(() => parseIdentity(identityText), `the identity in '${path.join(dir, KEYS_FILE)}' is invalid`);
  return {
    dir,
    addresses: doc.addresses.filter((a): a is string => typeof a === 'string'),
    keyId: doc.key_id,
    publicKey: typeof doc.public_key === 'string' ? doc.public_key : ed25519PublicKey(seed),
    recipient: typeof doc.recipient === 'string' ? doc.recipient : (await identity.recipient()).toString(),
    signingSeed: new Uint8Array(seed),
    identity,
  };
}
