/**
 * The plugin's credentials, read when it runs (never stored in a recipient or
 * identity): the login profile of `keyward login` —
 *
 *     PROFILE/device-keys.json  0600  { signing_seed: b64u(Ed25519 seed), identity: "<x25519 HPKE identity>" }
 *     PROFILE/profile.json            { addresses: [...], key_id: "<registered device key id>" }
 *
 * — and a bearer token (first line of the token file; else
 * `$KEYWARD_TOKEN_FILE`, else `$KEYWARD_TOKEN`). The signing seed signs the
 * data-plane requests (RFC 9421); data keys come back sealed to the HPKE
 * identity; the token authenticates the principal. Missing or damaged files
 * are `KW_INT_CREDENTIALS` (the message names the path, never the content).
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeywardHttpClient, KmsKeyService, type DataOperation, type JsonResponse, type JsonText } from '@keyward/client';
import { HpkeIdentity, parseIdentity as parseKeywardIdentity } from '@keyward/core';
import { IntegrationError } from '../errors.js';
import { parseIdentity, type KeywardAgeIdentity } from './strings.js';

export const PROFILE_ENV = 'KEYWARD_AGE_PROFILE';
export const IDENTITY_ENV = 'KEYWARD_AGE_IDENTITY';
export const TOKEN_FILE_ENV = 'KEYWARD_TOKEN_FILE';
export const TOKEN_ENV = 'KEYWARD_TOKEN';

type Env = Readonly<Record<string, string | undefined>>;

const creds = (m: string, cause?: unknown): IntegrationError => new IntegrationError('KW_INT_CREDENTIALS', m, cause === undefined ? {} : { cause });
const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** A KeywardHttpClient that remembers the last data-plane refusal (its code), so "not for me" can be explained. */
class RecordingHttp extends KeywardHttpClient {
  lastRefusal: string | undefined;
  override async data<T = unknown>(ns: string, name: string, op: DataOperation, body: JsonText | object, options: { signal?: AbortSignal } = {}): Promise<JsonResponse<T>> {
    try {
      return await super.data<T>(ns, name, op, body, options);
    } catch (e) {
      this.lastRefusal = (e as { code?: unknown }).code as string | undefined;
      throw e;
    }
  }
}

export interface PluginCredentials {
  readonly kms: KmsKeyService;
  /** The profile's service addresses, normalized as the client checks them. */
  readonly addresses: readonly string[];
  /** The code of the last refused data-plane call, if any. */
  lastRefusal(): string | undefined;
  dispose(): void;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw creds(`cannot read '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'}): run "keyward login --profile DIR" first`, e);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw creds(`'${file}' is damaged (not a JSON object)`, e);
  }
}

async function readToken(source: KeywardAgeIdentity, env: Env): Promise<string> {
  const file = source.tokenFile ?? nonEmpty(env[TOKEN_FILE_ENV]);
  let token: string;
  if (file !== undefined) {
    try {
      token = (await fsp.readFile(file, 'utf8')).split('\n')[0]!.trim();
    } catch (e) {
      throw creds(`cannot read the token file '${file}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, e);
    }
  } else {
    token = (nonEmpty(env[TOKEN_ENV]) ?? '').trim();
    if (token === '') throw creds(`no bearer token: the identity names no token file, and neither ${TOKEN_FILE_ENV} nor ${TOKEN_ENV} is set`);
  }
  if (!/^[\x21-\x7e]+$/.test(token)) throw creds(file !== undefined ? `the token file '${file}' does not start with a printable token` : `${TOKEN_ENV} is not a printable token`);
  return token;
}

/** Credentials from a keyward identity (decryption, or encryption with $KEYWARD_AGE_IDENTITY). */
export async function loadCredentials(source: KeywardAgeIdentity, env: Env = process.env): Promise<PluginCredentials> {
  const keys = await readJson(path.join(source.profile, 'device-keys.json'));
  const doc = await readJson(path.join(source.profile, 'profile.json'));
  const seed = typeof keys.signing_seed === 'string' ? new Uint8Array(Buffer.from(keys.signing_seed, 'base64url')) : null;
  const addresses = Array.isArray(doc.addresses) ? doc.addresses.filter((a): a is string => typeof a === 'string') : [];
  if (!seed || seed.length !== 32 || typeof keys.identity !== 'string' || typeof doc.key_id !== 'string' || addresses.length === 0) {
    throw creds(`the login profile in '${source.profile}' is incomplete: run "keyward login --force --profile ${source.profile}"`);
  }
  let identity: HpkeIdentity;
  try {
    const id = await parseKeywardIdentity(keys.identity);
    if (!(id instanceof HpkeIdentity)) throw new Error('not an HPKE identity');
    identity = id;
  } catch (e) {
    throw creds(`the device identity in '${path.join(source.profile, 'device-keys.json')}' is invalid`, e);
  }
  const token = await readToken(source, env);
  let http: RecordingHttp;
  try {
    http = new RecordingHttp({ addresses, token, device: { keyId: doc.key_id, signingSeed: seed } });
  } catch (e) {
    throw creds(`the login profile in '${source.profile}' has unusable addresses (${(e as Error).message})`, e);
  } finally {
    seed.fill(0);
  }
  const kms = await KmsKeyService.create({ http, identity });
  return {
    kms,
    addresses: addresses.map((a) => a.replace(/\/+$/, '')),
    lastRefusal: () => http.lastRefusal,
    dispose: () => http.dispose(),
  };
}

/**
 * Where the encrypting side's credentials are: `$KEYWARD_AGE_IDENTITY` (a
 * file with an `AGE-PLUGIN-KEYWARD-1…` line, e.g. the same age identity file
 * used to decrypt), else the profile `$KEYWARD_AGE_PROFILE`, else
 * `$XDG_CONFIG_HOME/keyward`, else `~/.config/keyward`, with the token from
 * the environment.
 */
export async function encryptingSource(env: Env = process.env): Promise<KeywardAgeIdentity> {
  const idFile = nonEmpty(env[IDENTITY_ENV]);
  if (idFile !== undefined) {
    let text: string;
    try {
      text = await fsp.readFile(idFile, 'utf8');
    } catch (e) {
      throw creds(`cannot read ${IDENTITY_ENV} '${idFile}' (${(e as NodeJS.ErrnoException).code ?? 'error'})`, e);
    }
    const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l.startsWith('AGE-PLUGIN-KEYWARD-1'));
    if (line === undefined) throw creds(`${IDENTITY_ENV} '${idFile}' holds no AGE-PLUGIN-KEYWARD-1… identity`);
    return parseIdentity(line);
  }
  const profile = nonEmpty(env[PROFILE_ENV]) ?? path.join(nonEmpty(env.XDG_CONFIG_HOME) ?? path.join(nonEmpty(env.HOME) ?? os.homedir(), '.config'), 'keyward');
  return { profile: path.resolve(profile) };
}
