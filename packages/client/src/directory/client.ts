/**
 * The directory from a device's or a sender's side (issue #6): resolve
 * `user:…`, `service:…` and `group:…` names to current device keys with
 * KEYTRANS proofs, enroll / approve / revoke devices with signed changes, and
 * monitor one's own identity.
 *
 * Every answer is verified by `@keyward/directory`'s `DirectoryClient`
 * (search proofs against the log's pinned configuration, no rollback, no
 * fork) and every value by `records.ts` (device keys, change signatures);
 * any failure throws — a `DirectoryError` (`KT_*`) or a
 * `DirectoryRecordError` (`KW_DIR_*`) — and nothing is returned, so a caller
 * never seals to an unproven key.
 *
 * Transport-agnostic: give it a {@link DirectoryTransport} (see
 * {@link fetchTransport}). Pure; runs in Node and browsers.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { base64urlnopad } from '@scure/base';
import { DirectoryClient, DirectoryError, decodeConfiguration, isDirectoryError, verifyTreeHead, type ClientOptions, type Configuration } from '@keyward/directory';
import { HpkeIdentity, HpkeRecipient } from '@keyward/core';
import {
  DirectoryRecordError,
  changeMessage,
  decodeGroupValue,
  decodeIdentityValue,
  entityLabel,
  signChange,
  type DeviceHpkeAlg,
  type DeviceKeys,
  type DeviceRecord,
  type GroupValue,
  type IdentityValue,
} from './records.js';
import { DirectoryWitnessCheck, parseWitnessConfig, type DirectoryWitnessConfig, type WitnessedHead, type WitnessedHeadAnswer } from './witnessed.js';
import { KeywardClientError } from '../http/errors.js';

/** One HTTP exchange with the key service's /v1/directory. */
export type DirectoryTransport = (req: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; path: string; body?: unknown }) => Promise<{ status: number; body: unknown }>;

/** An error answer of the service, with its stable code. */
export class DirectoryServiceError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'DirectoryServiceError';
  }
}

/**
 * A transport over `fetch` to a key service base URL (optionally with an admin bearer token).
 *
 * @example
 * const t = fetchTransport('https://kms.example.com');
 */
export function fetchTransport(baseUrl: string, opts: { token?: string; fetch?: typeof fetch } = {}): DirectoryTransport {
  const f = opts.fetch ?? fetch;
  return async ({ method, path, body }) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const r = await f(new URL(path, baseUrl), { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body: parsed };
  };
}

const b64 = (b: Uint8Array): string => base64urlnopad.encode(b);
const unb64 = (s: string): Uint8Array => base64urlnopad.decode(s);

async function ok<T>(t: DirectoryTransport, req: Parameters<DirectoryTransport>[0]): Promise<T> {
  const r = await t(req);
  if (r.status >= 200 && r.status < 300) return r.body as T;
  const e = (r.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  throw new DirectoryServiceError(e?.code ?? 'KW_INTERNAL', e?.message ?? `HTTP ${r.status}`, r.status);
}

/** A device's secret keys, kept on the device. */
export interface DeviceSecrets {
  readonly id: string;
  readonly hpke: { readonly alg: DeviceHpkeAlg; readonly identity: string };
  /** Ed25519 seed that signs directory changes. */
  readonly signSeed: string;
  /** Ed25519 seed of the RFC 9421 request-signing key. */
  readonly requestSeed: string;
  readonly requestKeyId: string;
}

/**
 * Generates a device's keys on the device: an HPKE identity, an Ed25519 signing key and a
 * request-signing key. Only {@link devicePublicKeys} of it ever leaves the device.
 *
 * @example
 * const dev = await generateDevice('laptop', 'x25519');
 */
export async function generateDevice(id: string, alg: DeviceHpkeAlg = 'x25519', requestKeyId?: string): Promise<DeviceSecrets> {
  const hpke = await HpkeIdentity.generate(alg);
  const signSeed = ed25519.utils.randomSecretKey();
  const requestSeed = ed25519.utils.randomSecretKey();
  const keyId = requestKeyId ?? `dev-${b64(ed25519.getPublicKey(requestSeed)).slice(0, 16)}`;
  return { id, hpke: { alg, identity: hpke.toString() }, signSeed: b64(signSeed), requestSeed: b64(requestSeed), requestKeyId: keyId };
}

/**
 * The public keys of a device, as published.
 *
 * @example
 * const pub = await devicePublicKeys(dev);
 */
export async function devicePublicKeys(d: DeviceSecrets): Promise<DeviceKeys> {
  const hpke = await HpkeIdentity.parse(d.hpke.identity, d.hpke.alg);
  return {
    id: d.id,
    hpke: { alg: d.hpke.alg, key: b64(hpke.publicKey) },
    sign: b64(ed25519.getPublicKey(unb64(d.signSeed))),
    request: { keyId: d.requestKeyId, key: b64(ed25519.getPublicKey(unb64(d.requestSeed))) },
  };
}

const wire = (k: DeviceKeys) => ({ id: k.id, hpke: k.hpke, sign: k.sign, request: { key_id: k.request.keyId, key: k.request.key } });

/** What self-monitoring found. */
export interface MonitorReport {
  /** The greatest version now verified. */
  readonly version: number;
  /** Device keys present now that this device did not add or approve (expected set). */
  readonly unexpected: readonly DeviceRecord[];
  /** Changes since the last check, oldest first. */
  readonly changes: readonly { version: number; op: string; device: string; by: string }[];
}

/**
 * A verifying directory client.
 *
 * @example
 * const dir = await Directory.connect(fetchTransport(url), { pinnedConfiguration });
 * const recipients = await dir.recipients(['user:alice', 'group:auditors']);
 */
export class Directory {
  #lastWitnessed: WitnessedHead | undefined;

  private constructor(
    private readonly t: DirectoryTransport,
    readonly kt: DirectoryClient,
    private readonly config: Configuration,
    /** With witnesses configured: every head is accepted only with k cosignatures (witnessed.ts). */
    readonly witness?: DirectoryWitnessCheck,
  ) {}

  /**
   * With witnesses configured: the witness check of the newest head this client accepted (its
   * size, which witnesses cosigned it and when); undefined before the first, or without witnesses.
   */
  get lastWitnessed(): WitnessedHead | undefined {
    return this.#lastWitnessed;
  }

  /**
   * Connects: fetches the log configuration and checks it against `pinned` (base64url of the
   * encoded Configuration) when given — otherwise trusts it on first use; the caller should pin it.
   */
  static async connect(t: DirectoryTransport, opts: { pinned?: string; client?: ClientOptions; witnesses?: DirectoryWitnessConfig } = {}): Promise<Directory> {
    const witness = opts.witnesses !== undefined ? new DirectoryWitnessCheck(opts.witnesses, opts.client?.now) : undefined;
    const c = await ok<{ configuration: string }>(t, { method: 'GET', path: '/v1/directory/config' });
    if (opts.pinned !== undefined && opts.pinned !== c.configuration) {
      throw new DirectoryError('KT_BAD_RESPONSE', 'the directory configuration is not the pinned one (other keys or parameters)');
    }
    const config: Configuration = decodeConfiguration(unb64(c.configuration));
    return new Directory(t, new DirectoryClient(config, opts.client ?? {}), config, witness);
  }

  /**
   * What the server publishes to pin (`GET /v1/directory/config`): the log configuration and, when
   * the deployment has directory witnesses, their configuration (head-log key, witness keys, k) —
   * null without. Both are the server's word: pin them on first use or compare them with what the
   * operator published, then check later presentations against the pin
   * ({@link checkPinnedWitnesses}); never take them afresh on every use. A malformed witness
   * configuration is `KW_CLIENT_BAD_RESPONSE`.
   *
   * @example
   * const { configuration, witnesses } = await Directory.published(t);
   */
  static async published(t: DirectoryTransport): Promise<{ configuration: string; witnesses: DirectoryWitnessConfig | null }> {
    const c = await ok<{ configuration: string; witnesses?: unknown }>(t, { method: 'GET', path: '/v1/directory/config' });
    if (typeof c?.configuration !== 'string') throw new KeywardClientError('KW_CLIENT_BAD_RESPONSE', 'the directory configuration answer has no configuration');
    if (c.witnesses === undefined || c.witnesses === null) return { configuration: c.configuration, witnesses: null };
    try {
      return { configuration: c.configuration, witnesses: parseWitnessConfig(c.witnesses) };
    } catch (e) {
      throw new KeywardClientError('KW_CLIENT_BAD_RESPONSE', `the directory's witness configuration is malformed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The configuration to pin, base64url. */
  static async configuration(t: DirectoryTransport): Promise<string> {
    return (await ok<{ configuration: string }>(t, { method: 'GET', path: '/v1/directory/config' })).configuration;
  }

  /**
   * Verified search: the value of `name` (greatest or fixed version), or null when proven absent.
   * With witnesses configured, the answer's head must also be the latest entry of a head-log
   * checkpoint k of them cosigned, the k-th of them within `maxAgeSeconds`
   * (`TLOG_NOT_ENOUGH_COSIGNATURES`, `TLOG_BAD_PROOF`, `TLOG_STALE_COSIGNATURES` otherwise).
   */
  async search(name: string, version?: number): Promise<{ version: number; value: Uint8Array } | null> {
    if (this.witness === undefined) return this.searchOnce(name, version);
    // The log may grow between the answer and the witnessed checkpoint: search again, twice at most.
    for (let attempt = 0; ; attempt++) {
      const r = await this.searchOnce(name, version);
      const head = this.kt.head;
      if (head === undefined) return r; // an empty log: nothing to accept
      const w = await this.witnessedFor(head.treeSize);
      if (w !== null && w.tree_size > head.treeSize && attempt < 2) continue;
      this.#lastWitnessed = this.witness.verify(head, w);
      return r;
    }
  }

  /**
   * The log's current signed tree head (`GET /v1/directory/head`), its signature checked against
   * the pinned configuration (and, when this client holds a verified head, its consistency with
   * it: `KT_ROLLBACK`, `KT_FORK`) and — with witnesses configured — accepted only as the latest
   * entry of a head-log checkpoint k of them cosigned, fresh, exactly as {@link search} accepts a
   * head. Null for an empty log. `witnessed` is null without witnesses configured.
   *
   * @example
   * const h = await dir.verifyHead(); // throws TLOG_NOT_ENOUGH_COSIGNATURES, KT_BAD_SIGNATURE, …
   */
  async verifyHead(): Promise<{ treeSize: number; root: Uint8Array; witnessed: WitnessedHead | null } | null> {
    for (let attempt = 0; ; attempt++) {
      let h: { tree_size: number; root: string; signature: string };
      try {
        h = await ok<{ tree_size: number; root: string; signature: string }>(this.t, { method: 'GET', path: '/v1/directory/head' });
      } catch (e) {
        if (e instanceof DirectoryServiceError && e.code === 'KT_NOT_FOUND') {
          if (this.kt.treeSize !== undefined) throw new DirectoryError('KT_ROLLBACK', `the log claims to be empty; this client verified size ${this.kt.treeSize}`);
          return null;
        }
        throw e;
      }
      let head: { treeSize: number; root: Uint8Array; signature: Uint8Array };
      try {
        if (!Number.isSafeInteger(h?.tree_size) || h.tree_size < 1) throw new Error('no tree size');
        head = { treeSize: h.tree_size, root: unb64(h.root), signature: unb64(h.signature) };
      } catch (e) {
        throw new DirectoryError('KT_MALFORMED', 'the tree head answer is malformed', { cause: e });
      }
      const mine = this.kt.treeSize;
      if (mine === undefined) verifyTreeHead(this.config, head, head.root);
      else if (head.treeSize < mine) throw new DirectoryError('KT_ROLLBACK', `the log shows size ${head.treeSize}; this client verified size ${mine}`);
      else {
        let proof: Uint8Array[] | undefined;
        if (head.treeSize > mine) {
          const c = await ok<{ proof: string[] }>(this.t, { method: 'GET', path: `/v1/directory/consistency?from=${mine}&to=${head.treeSize}` });
          try {
            proof = c.proof.map(unb64);
          } catch (e) {
            throw new DirectoryError('KT_MALFORMED', 'the consistency proof answer is malformed', { cause: e });
          }
        }
        this.kt.checkHead(head, proof);
      }
      if (this.witness === undefined) return { treeSize: head.treeSize, root: head.root, witnessed: null };
      const w = await this.witnessedFor(head.treeSize);
      if (w !== null && w.tree_size > head.treeSize && attempt < 2) continue;
      this.#lastWitnessed = this.witness.verify(head, w);
      return { treeSize: head.treeSize, root: head.root, witnessed: this.#lastWitnessed };
    }
  }

  /** The newest witnessed head for a head of `size`; cosigning a new head takes a moment: asks again, twice, before giving up. */
  private async witnessedFor(size: number): Promise<WitnessedHeadAnswer | null> {
    let w = await this.fetchWitnessed(size);
    for (let wait = 1; wait <= 2 && (w === null || w.tree_size < size); wait++) {
      await new Promise((resolve) => setTimeout(resolve, 250 * wait));
      w = await this.fetchWitnessed(size);
    }
    return w;
  }

  /** `GET /v1/directory/witnessed`, or null when the server has none for this head. */
  private async fetchWitnessed(size: number): Promise<WitnessedHeadAnswer | null> {
    try {
      return await ok<WitnessedHeadAnswer>(this.t, { method: 'GET', path: `/v1/directory/witnessed?size=${size}` });
    } catch (e) {
      if (e instanceof DirectoryServiceError && e.code === 'KW_DIR_NOT_WITNESSED') return null;
      throw e;
    }
  }

  private async searchOnce(name: string, version?: number): Promise<{ version: number; value: Uint8Array } | null> {
    const label = entityLabel(name);
    const last = this.kt.treeSize;
    let r: { response: string };
    try {
      r = await ok<{ response: string }>(this.t, {
        method: 'POST', path: '/v1/directory/search',
        body: { name, ...(version !== undefined ? { version } : {}), ...(last !== undefined ? { last } : {}) },
      });
    } catch (e) {
      // An empty log proves nothing, and hides nothing either: there is no key to be refused.
      // After a verified head, "empty" is a rollback.
      if (e instanceof DirectoryServiceError && e.code === 'KT_NOT_FOUND' && /empty/.test(e.message)) {
        if (last !== undefined) throw new DirectoryError('KT_ROLLBACK', `the log claims to be empty; this client verified size ${last}`);
        return null;
      }
      throw e;
    }
    try {
      const found = this.kt.verifySearch({ label, ...(version !== undefined ? { version } : {}) }, unb64(r.response));
      return { version: found.version, value: found.value };
    } catch (e) {
      if (isDirectoryError(e, 'KT_NOT_FOUND')) return null;
      throw e;
    }
  }

  /** The next label version of `name` (what a change must be signed for). */
  async nextVersion(name: string): Promise<number> {
    const r = await this.search(name);
    return r === null ? 0 : r.version + 1;
  }

  /**
   * The verified identity record of `name`, or null when it has no devices yet. A change signed
   * by a device is checked against that device's key in the previous version (also proven), so
   * a device the identity's own devices did not sign for is refused (`KW_DIR_BAD_SIGNATURE`).
   */
  async identity(name: string): Promise<IdentityValue | null> {
    const r = await this.search(name);
    if (r === null) return null;
    const v = decodeIdentityValue(r.value, name, r.version);
    if (v.change.by.kind !== 'device') return v;
    const p = r.version > 0 ? await this.search(name, r.version - 1) : null;
    if (p === null) throw new DirectoryRecordError('KW_DIR_BAD_SIGNATURE', `${name} v${r.version} is signed by a device, but there is no earlier version`);
    return decodeIdentityValue(r.value, name, r.version, decodeIdentityValue(p.value, name, r.version - 1));
  }

  /** The verified group record of `name`, or null. */
  async group(name: string): Promise<GroupValue | null> {
    const r = await this.search(name);
    return r === null ? null : decodeGroupValue(r.value, name);
  }

  /**
   * Every current device key of every name (groups expand to their members' devices), each
   * proven; an identity without devices or an unknown group is `KW_DIR_RECORD_INVALID`.
   */
  async devices(names: readonly string[]): Promise<{ name: string; device: DeviceRecord }[]> {
    const out: { name: string; device: DeviceRecord }[] = [];
    const seen = new Set<string>();
    const addIdentity = async (n: string): Promise<void> => {
      if (seen.has(n)) return;
      seen.add(n);
      const id = await this.identity(n);
      if (id === null || id.devices.length === 0) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${n} has no devices in the directory`);
      for (const d of id.devices) out.push({ name: n, device: d });
    };
    for (const n of names) {
      if (n.startsWith('group:')) {
        const g = await this.group(n);
        if (g === null) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `no group ${n} in the directory`);
        for (const m of g.members) await addIdentity(m);
      } else await addIdentity(n);
    }
    return out;
  }

  /** HPKE recipients for `names` (see {@link devices}). */
  async recipients(names: readonly string[]): Promise<HpkeRecipient[]> {
    const ds = await this.devices(names);
    return Promise.all(ds.map((d) => HpkeRecipient.fromPublicKey(d.device.hpke.alg, unb64(d.device.hpke.key))));
  }

  // --- changes -----------------------------------------------------------------------------

  /** Enrolls `device` as the first device of `name` with a one-time token. */
  async enroll(name: string, token: string, device: DeviceSecrets): Promise<{ version: number }> {
    return this.enrollKeys(name, token, await devicePublicKeys(device), (m) => Promise.resolve(ed25519.sign(m, unb64(device.signSeed))));
  }

  /**
   * {@link enroll} for a device whose signing key the caller holds outside this library (a
   * non-extractable WebCrypto Ed25519 key in a browser, say): `keys` are its public keys and
   * `sign` returns the Ed25519 signature of the message it is given.
   *
   * @example
   * await dir.enrollKeys('user:alice', token, keys, async (m) => new Uint8Array(await crypto.subtle.sign('Ed25519', key, m)));
   */
  async enrollKeys(name: string, token: string, keys: DeviceKeys, sign: (message: Uint8Array) => Promise<Uint8Array>): Promise<{ version: number }> {
    const version = await this.nextVersion(name);
    const at = Date.now();
    const pop = b64(await sign(changeMessage(name, 'enroll', version, at, keys)));
    const r = await ok<{ version: number }>(this.t, { method: 'POST', path: '/v1/directory/enroll', body: { token, name, device: wire(keys), version, at, pop } });
    await this.expectVersion(name, r.version);
    return r;
  }

  /**
   * Approves a new device of `name` from an existing one: both sign. `newKeys` are the new
   * device's public keys and `pop` its signature, made on the new device with {@link approvalPop}.
   */
  async approve(name: string, approver: DeviceSecrets, newKeys: DeviceKeys, pop: { version: number; at: number; pop: string }): Promise<{ version: number }> {
    const sig = signChange(unb64(approver.signSeed), name, 'approve', pop.version, pop.at, newKeys);
    const r = await ok<{ version: number }>(this.t, {
      method: 'POST', path: `/v1/directory/identities/${encodeURIComponent(name)}/devices`,
      body: { device: wire(newKeys), version: pop.version, at: pop.at, pop: pop.pop, approver: approver.id, sig },
    });
    await this.expectVersion(name, r.version);
    return r;
  }

  /** The new device's half of an approval: its keys and proof of possession for the next version. */
  async approvalPop(name: string, device: DeviceSecrets): Promise<{ keys: DeviceKeys; version: number; at: number; pop: string }> {
    const keys = await devicePublicKeys(device);
    const version = await this.nextVersion(name);
    const at = Date.now();
    return { keys, version, at, pop: signChange(unb64(device.signSeed), name, 'approve', version, at, keys) };
  }

  /** Revokes device `deviceId` of `name`, signed by `signer` (a current device; may be itself). */
  async revoke(name: string, deviceId: string, signer: DeviceSecrets): Promise<{ version: number }> {
    const id = await this.identity(name);
    const target = id?.devices.find((d) => d.id === deviceId);
    if (!id || !target) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${name} has no current device ${deviceId}`);
    const version = (await this.nextVersion(name));
    const at = Date.now();
    const keys: DeviceKeys = { id: target.id, hpke: target.hpke, sign: target.sign, request: target.request };
    const sig = signChange(unb64(signer.signSeed), name, 'revoke', version, at, keys);
    const r = await ok<{ version: number }>(this.t, {
      method: 'POST', path: `/v1/directory/identities/${encodeURIComponent(name)}/devices/${encodeURIComponent(deviceId)}/revoke`,
      body: { version, at, by: signer.id, sig },
    });
    await this.expectVersion(name, r.version);
    return r;
  }

  private async expectVersion(name: string, version: number): Promise<void> {
    const r = await this.search(name);
    if (r === null || r.version !== version) throw new DirectoryError('KT_BAD_RESPONSE', `the log does not show version ${version} of ${name} after the change`);
  }

  /**
   * Self-monitoring: verifies every version of `name` after `sinceVersion` (each against the one
   * before, signatures included) and reports the device keys now present that are not in
   * `expected` (the device ids this device added or approved, itself included).
   */
  async monitorSelf(name: string, expected: readonly string[], sinceVersion = -1): Promise<MonitorReport> {
    const latest = await this.search(name);
    if (latest === null) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${name} has no versions`);
    const changes: MonitorReport['changes'][number][] = [];
    let previous: IdentityValue | undefined;
    const from = Math.max(0, sinceVersion);
    if (from > 0) {
      const p = await this.search(name, from - 1);
      if (p) previous = decodeIdentityValue(p.value, name, from - 1);
    }
    let current: IdentityValue | undefined;
    for (let v = from; v <= latest.version; v++) {
      const r = v === latest.version ? latest : await this.search(name, v);
      if (r === null) throw new DirectoryError('KT_BAD_RESPONSE', `version ${v} of ${name} is missing`);
      current = decodeIdentityValue(r.value, name, v, previous);
      if (v > sinceVersion) {
        const by = current.change.by;
        changes.push({ version: v, op: current.change.op, device: current.change.device.id, by: by.kind === 'admin' ? `admin:${by.principal}` : `${by.kind}:${by.id}` });
      }
      previous = current;
    }
    return { version: latest.version, unexpected: current!.devices.filter((d) => !expected.includes(d.id)), changes };
  }
}

/**
 * A short safety number for a pair of identities: both parties compute it from the proven device
 * signing keys of both, independent of order; equal numbers mean both see the same keys.
 * 60 decimal digits in 12 groups of 5.
 *
 * @example
 * safetyNumber(alice, bob) // '01234 56789 …'
 */
export function safetyNumber(a: IdentityValue, b: IdentityValue): string {
  const part = (v: IdentityValue): string => `${v.name}\n${[...v.devices].map((d) => `${d.id}:${d.sign}:${d.hpke.alg}:${d.hpke.key}`).sort().join('\n')}`;
  const [x, y] = [part(a), part(b)].sort();
  const msg = new TextEncoder().encode(`keyward/safety-number/v1\n${x}\n\n${y}`);
  const h = sha512(msg);
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    const n = ((h[i * 4]! << 24) | (h[i * 4 + 1]! << 16) | (h[i * 4 + 2]! << 8) | h[i * 4 + 3]!) >>> 0;
    groups.push(String(n % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}
