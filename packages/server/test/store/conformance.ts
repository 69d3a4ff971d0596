/**
 * The store conformance suite (after openbao's `ExerciseBackend`): every
 * backend runs exactly these cases, so SQLite now and PostgreSQL later keep the
 * same contract. It covers every method of `Store`, the key-version transition
 * table, atomic rotation under concurrency, the gapless append-only audit log,
 * transaction rollback and misuse, and validation of stored rows.
 *
 * Usage (one file per backend):
 *
 *   exerciseStore('sqlite', () => openSqliteStore({ path: tempPath() }), { corrupt });
 *
 * `open` must return a fresh, empty store each time. `harness.corrupt` edits
 * the backend's rows behind the store's back (raw SQL, as an attacker with the
 * file would) for each {@link CorruptionScenario}; without it those cases are
 * skipped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError, type StoreErrorCode } from '../../src/store/errors.js';
import type { KeyType, KeyVersionRow, KeyVersionState, Store } from '../../src/store/types.js';
import { exerciseMfaStore } from './conformance-mfa.js';
import { exerciseQuorumStore } from './conformance-quorum.js';
import { exerciseNonceStore } from './conformance-nonces.js';

// --- fixtures -----------------------------------------------------------------------------

/** Times used throughout (fixed, so expectations are exact). */
export const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);

/** A recognisable blob of `length` bytes. */
const bytes = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);
/** A distinct lower-case SHA-256-shaped hex string. */
const hexHash = (n: number): string => n.toString(16).padStart(64, '0');
/** A distinct 32-byte leaf hash. */
const leaf = (n: number): Uint8Array => bytes(32, n % 256);
const event = (n: number): string => `{"n":${n},"op":"test"}`;

/** The rows every corruption scenario expects, created by `seedCorruptionFixture`. */
export const CORRUPTION_FIXTURE = {
  ns: 'acme',
  key: 'k1', // aes256, version 1 enabled
  principal: 'p1',
  token: 't1',
  tokenHash: hexHash(1),
  signingKey: 'sk1',
  policy: 'pol1',
  auditEvents: 3, // indices 0, 1, 2
  checkpointSize: 3,
} as const;

/**
 * Ways a backend's rows get damaged. The harness applies each to
 * `CORRUPTION_FIXTURE` (SQL in the backend's own test file):
 * - `namespace.created`: namespace acme's created time negative
 * - `key.type`: key acme/k1's type not a known type
 * - `key.min_decryption_version`: key acme/k1's min decryption version above its latest
 * - `key_version.wrapped`: version acme/k1/1 enabled with a NULL blob
 * - `principal.roles`: principal p1's roles not JSON
 * - `token.token_hash`: token t1's hash not hex
 * - `token.admin`: token t1's admin flag neither 0 nor 1
 * - `signing_key.public_key`: signing key sk1's ed25519 key 31 bytes long
 * - `policy.document`: policy pol1's document not JSON
 * - `audit_event.leaf_hash`: audit event 1's leaf hash 5 bytes long
 * - `audit_event.missing`: audit event 1 deleted (a hole in the log)
 * - `checkpoint.root`: checkpoint of size 3 with a 5-byte root
 */
export type CorruptionScenario =
  | 'namespace.created'
  | 'key.type'
  | 'key.min_decryption_version'
  | 'key_version.wrapped'
  | 'principal.roles'
  | 'token.token_hash'
  | 'token.admin'
  | 'signing_key.public_key'
  | 'policy.document'
  | 'audit_event.leaf_hash'
  | 'audit_event.missing'
  | 'checkpoint.root';

/** What a backend supplies besides `open`. */
export interface StoreHarness {
  /** Damages the fixture rows of `store` as `scenario` describes, bypassing the store. */
  corrupt(store: Store, scenario: CorruptionScenario): Promise<void>;
}

/** Each scenario's reads (and writes that read the row first), all of which must fail with `KW_STORE_CORRUPT_ROW`. */
const CORRUPTION_READS: Record<CorruptionScenario, (s: Store) => (() => Promise<unknown>)[]> = {
  'namespace.created': (s) => [() => s.getNamespace('acme'), () => s.listNamespaces()],
  'key.type': (s) => [
    () => s.getKey('acme', 'k1'),
    () => s.listKeys('acme'),
    () => s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 1), publicKey: null, created: T0 }),
    () => s.updateKey('acme', 'k1', { rotationPeriodSeconds: 60 }),
  ],
  'key.min_decryption_version': (s) => [() => s.getKey('acme', 'k1'), () => s.listKeys('acme')],
  'key_version.wrapped': (s) => [
    () => s.getKeyVersion('acme', 'k1', 1),
    () => s.listKeyVersions('acme', 'k1'),
    () => s.setKeyVersionState({ ns: 'acme', key: 'k1', version: 1 }, { state: 'disabled' }),
  ],
  'principal.roles': (s) => [() => s.getPrincipal('p1'), () => s.listPrincipals('acme')],
  'token.token_hash': (s) => [() => s.getToken('t1'), () => s.listTokens('p1')],
  'token.admin': (s) => [() => s.getToken('t1'), () => s.getTokenByHash(CORRUPTION_FIXTURE.tokenHash), () => s.listTokens('p1')],
  'signing_key.public_key': (s) => [() => s.getSigningKey('sk1'), () => s.listSigningKeys('p1')],
  'policy.document': (s) => [() => s.getPolicy('pol1'), () => s.getPolicy('pol1', 1), () => s.listPolicies('acme'), () => s.listPolicyVersions('pol1')],
  'audit_event.leaf_hash': (s) => [() => s.getAuditEvent(1), () => s.readAuditEvents({ start: 0, end: 3 })],
  'audit_event.missing': (s) => [() => s.readAuditEvents({ start: 0, end: 3 })],
  'checkpoint.root': (s) => [() => s.latestAuditCheckpoint(), () => s.getAuditCheckpoint(3)],
};

// --- helpers ------------------------------------------------------------------------------

/** Awaits `p` and asserts it rejects with a StoreError of `code`. */
export async function expectCode(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isStoreError(e), `expected a StoreError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function seedNamespace(s: Store, name = 'acme'): Promise<void> {
  await s.createNamespace({ name, created: T0 });
}

const ASYMMETRIC: ReadonlySet<KeyType> = new Set(['x25519', 'xwing', 'ed25519']);

async function seedKey(
  s: Store,
  opts: { ns?: string; name?: string; type?: KeyType; rotationPeriodSeconds?: number | null } = {},
): Promise<void> {
  const { ns = 'acme', name = 'k1', type = 'aes256', rotationPeriodSeconds = null } = opts;
  if ((await s.getNamespace(ns)) === null) await seedNamespace(s, ns);
  await s.createKey({
    ns,
    name,
    type,
    created: T0,
    rotationPeriodSeconds,
    firstVersion: { wrapped: bytes(48, 0xa1), publicKey: ASYMMETRIC.has(type) ? bytes(32, 0xb1) : null },
  });
}

async function seedPrincipal(s: Store, id = 'p1', ns = 'acme'): Promise<void> {
  if ((await s.getNamespace(ns)) === null) await seedNamespace(s, ns);
  await s.createPrincipal({ id, ns, kind: 'service', name: `svc-${id}`, roles: ['reader'], created: T0 });
}

const ref = (version: number, key = 'k1', ns = 'acme') => ({ ns, key, version });

/** Brings version 1 of acme/k1 into `state` along allowed transitions. */
async function driveTo(s: Store, state: KeyVersionState): Promise<KeyVersionRow> {
  const r = ref(1);
  switch (state) {
    case 'enabled':
      return (await s.getKeyVersion('acme', 'k1', 1))!;
    case 'disabled':
      return s.setKeyVersionState(r, { state: 'disabled' });
    case 'scheduled_for_deletion':
      return s.setKeyVersionState(r, { state: 'scheduled_for_deletion', deletionAt: at(86_400) });
    case 'destroyed':
      await s.setKeyVersionState(r, { state: 'scheduled_for_deletion', deletionAt: at(86_400) });
      return s.destroyKeyVersion(r, at(90_000));
  }
}

/** Applies a change to version 1 of acme/k1 toward `to`, through the method the interface has for it. */
function changeTo(s: Store, to: KeyVersionState): Promise<KeyVersionRow> {
  const r = ref(1);
  switch (to) {
    case 'enabled':
    case 'disabled':
      return s.setKeyVersionState(r, { state: to });
    case 'scheduled_for_deletion':
      return s.setKeyVersionState(r, { state: to, deletionAt: at(172_800) });
    case 'destroyed':
      return s.destroyKeyVersion(r, at(200_000));
  }
}

/** The transition table, written out here independently of the store's copy. */
const ALLOWED: ReadonlySet<string> = new Set([
  'enabled->disabled',
  'enabled->scheduled_for_deletion',
  'disabled->enabled',
  'disabled->scheduled_for_deletion',
  'scheduled_for_deletion->disabled',
  'scheduled_for_deletion->destroyed',
]);
const STATES: readonly KeyVersionState[] = ['enabled', 'disabled', 'scheduled_for_deletion', 'destroyed'];

/** Every method of the Store interface; the suite checks each exists. */
const STORE_METHODS = [
  'createNamespace', 'getNamespace', 'listNamespaces',
  'createKey', 'getKey', 'listKeys', 'updateKey', 'listKeysDueForRotation',
  'rotateKey', 'getKeyVersion', 'listKeyVersions', 'setKeyVersionState', 'destroyKeyVersion', 'listVersionsDueForDestruction',
  'createPrincipal', 'getPrincipal', 'listPrincipals', 'setPrincipalRoles',
  'createToken', 'getTokenByHash', 'getToken', 'listTokens', 'revokeToken', 'revokePrincipalTokens',
  'addSigningKey', 'getSigningKey', 'listSigningKeys', 'revokeSigningKey',
  'putPolicy', 'getPolicy', 'listPolicies', 'listPolicyVersions',
  'appendAuditEvent', 'getAuditEvent', 'readAuditEvents', 'auditSize',
  'addAuditCheckpoint', 'latestAuditCheckpoint', 'getAuditCheckpoint',
  'getMeta', 'setMeta',
  'addMfaFactor', 'getMfaFactor', 'listMfaFactors', 'updateMfaFactor', 'removeMfaFactor', 'getMfaLockout', 'setMfaLockout',
  'createStepUp', 'getStepUp', 'markStepUpVerified', 'consumeStepUp',
  'lockAuditHead', 'useNonce', 'purgeNonces',
  'transaction', 'checkpoint', 'schemaVersion', 'close',
] as const satisfies readonly (keyof Store)[];

/** The only audit-related methods a store may have: none changes or removes anything. */
const AUDIT_METHODS: ReadonlySet<string> = new Set([
  'appendAuditEvent', 'getAuditEvent', 'readAuditEvents', 'auditSize',
  'addAuditCheckpoint', 'latestAuditCheckpoint', 'getAuditCheckpoint', 'lockAuditHead',
]);

/** Every function-valued property name of `o` and its prototypes (but Object's). */
function methodNames(o: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = o; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) {
      if (typeof (o as Record<string, unknown>)[n] === 'function') names.add(n);
    }
  }
  return [...names];
}

// --- the suite ------------------------------------------------------------------------------

/**
 * Registers the conformance cases for one backend under `describe(name)`.
 * `open` returns a fresh empty store for every case (each case closes it).
 */
export function exerciseStore(name: string, open: () => Promise<Store>, harness?: StoreHarness): void {
  /** A case on a fresh store, closed afterwards whatever happens. */
  const test = (title: string, fn: (s: Store) => Promise<void>): void => {
    void it(title, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });
  };

  // Second factors, lockouts and step-ups (issue #7).
  exerciseMfaStore(name, open);
  exerciseQuorumStore(name, open);
  // The shared replay cache and the audit sequencer lock (issue #4, several nodes).
  exerciseNonceStore(name, open);

  void describe(`store conformance: ${name}`, () => {
    void describe('shape', () => {
      test('has every method of the Store interface', async (s) => {
        for (const m of STORE_METHODS) assert.equal(typeof s[m], 'function', m);
        assert.ok(Number.isInteger(await s.schemaVersion()) && (await s.schemaVersion()) >= 1);
      });

      test('has no method that changes or removes audit events or checkpoints', async (s) => {
        const auditish = methodNames(s).filter((n) => /audit|checkpoint/i.test(n) && n !== 'checkpoint');
        assert.deepEqual(auditish.filter((n) => !AUDIT_METHODS.has(n)), []);
        await Promise.resolve();
      });
    });

    void describe('namespaces', () => {
      test('create, get and list (sorted by name)', async (s) => {
        const row = await s.createNamespace({ name: 'zeta', created: T0 });
        assert.deepEqual(row, { name: 'zeta', created: T0 });
        await s.createNamespace({ name: 'alpha', created: at(1) });
        assert.deepEqual(await s.getNamespace('zeta'), { name: 'zeta', created: T0 });
        assert.equal(await s.getNamespace('missing'), null);
        assert.deepEqual((await s.listNamespaces()).map((n) => n.name), ['alpha', 'zeta']);
      });

      test('a duplicate name is a conflict and changes nothing', async (s) => {
        await seedNamespace(s);
        await expectCode(s.createNamespace({ name: 'acme', created: at(5) }), 'KW_STORE_CONFLICT');
        assert.deepEqual(await s.getNamespace('acme'), { name: 'acme', created: T0 });
      });

      for (const [label, input] of [
        ['an empty name', { name: '', created: T0 }],
        ['a name with a space', { name: 'a b', created: T0 }],
        ['a non-ASCII name', { name: 'ａｃｍｅ', created: T0 }],
        ['an invalid date', { name: 'ok', created: new Date(Number.NaN) }],
        ['a missing date', { name: 'ok' }],
      ] as const) {
        test(`refuses ${label}`, async (s) => {
          await expectCode(s.createNamespace(input as never), 'KW_STORE_INVALID_ARGUMENT');
          assert.deepEqual(await s.listNamespaces(), []);
        });
      }
    });

    void describe('keys', () => {
      test('createKey makes the key and its enabled version 1 together', async (s) => {
        await seedNamespace(s);
        const { key, version } = await s.createKey({
          ns: 'acme',
          name: 'invoices',
          type: 'aes256',
          created: T0,
          rotationPeriodSeconds: 3600,
          firstVersion: { wrapped: bytes(60, 7), publicKey: null },
        });
        assert.deepEqual(key, {
          ns: 'acme',
          name: 'invoices',
          type: 'aes256',
          created: T0,
          rotationPeriodSeconds: 3600,
          minDecryptionVersion: 1,
          exportable: false,
          latestVersion: 1,
        });
        assert.deepEqual(version, {
          ns: 'acme',
          key: 'invoices',
          version: 1,
          state: 'enabled',
          wrapped: bytes(60, 7),
          publicKey: null,
          created: T0,
          deletionAt: null,
          destroyedAt: null,
        });
        assert.deepEqual(await s.getKey('acme', 'invoices'), key);
        assert.deepEqual(await s.getKeyVersion('acme', 'invoices', 1), version);
      });

      for (const type of ['aes256', 'x25519', 'xwing', 'ed25519', 'hmac-sha256'] as const) {
        test(`stores a ${type} key (public key iff asymmetric) and returns plain bytes`, async (s) => {
          await seedKey(s, { name: `k-${type}`, type });
          const v = (await s.getKeyVersion('acme', `k-${type}`, 1))!;
          assert.equal((await s.getKey('acme', `k-${type}`))!.type, type);
          assert.ok(v.wrapped instanceof Uint8Array);
          assert.deepEqual(v.wrapped, bytes(48, 0xa1));
          assert.deepEqual(v.publicKey, ASYMMETRIC.has(type) ? bytes(32, 0xb1) : null);
        });
      }

      test('an asymmetric key without a public key, or a symmetric one with one, is refused', async (s) => {
        await seedNamespace(s);
        const base = { ns: 'acme', created: T0 } as const;
        await expectCode(
          s.createKey({ ...base, name: 'a', type: 'x25519', firstVersion: { wrapped: bytes(32, 1), publicKey: null } }),
          'KW_STORE_INVALID_ARGUMENT',
        );
        await expectCode(
          s.createKey({ ...base, name: 'b', type: 'hmac-sha256', firstVersion: { wrapped: bytes(32, 1), publicKey: bytes(32, 2) } }),
          'KW_STORE_INVALID_ARGUMENT',
        );
        assert.deepEqual(await s.listKeys('acme'), []);
      });

      test('bad arguments are refused and change nothing', async (s) => {
        await seedNamespace(s);
        const good = { ns: 'acme', name: 'k', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } };
        for (const bad of [
          { ...good, type: 'rot13' },
          { ...good, name: 'has space' },
          { ...good, rotationPeriodSeconds: 0 },
          { ...good, rotationPeriodSeconds: 1.5 },
          { ...good, firstVersion: { wrapped: new Uint8Array(0), publicKey: null } },
          { ...good, firstVersion: { wrapped: 'not bytes', publicKey: null } },
          { ...good, created: 'yesterday' },
        ]) {
          await expectCode(s.createKey(bad as never), 'KW_STORE_INVALID_ARGUMENT');
        }
        assert.deepEqual(await s.listKeys('acme'), []);
      });

      test('a duplicate name is a conflict; a missing namespace is not found', async (s) => {
        await seedKey(s);
        await expectCode(
          s.createKey({ ns: 'acme', name: 'k1', type: 'aes256', created: at(9), firstVersion: { wrapped: bytes(32, 9), publicKey: null } }),
          'KW_STORE_CONFLICT',
        );
        assert.deepEqual((await s.getKeyVersion('acme', 'k1', 1))!.wrapped, bytes(48, 0xa1));
        await expectCode(
          s.createKey({ ns: 'nope', name: 'k1', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } }),
          'KW_STORE_NOT_FOUND',
        );
        assert.equal(await s.getNamespace('nope'), null);
      });

      test('getKey of a missing key is null; listKeys is per namespace and sorted', async (s) => {
        await seedKey(s, { name: 'b' });
        await seedKey(s, { name: 'a' });
        await seedKey(s, { ns: 'other', name: 'c' });
        assert.equal(await s.getKey('acme', 'zzz'), null);
        assert.deepEqual((await s.listKeys('acme')).map((k) => k.name), ['a', 'b']);
        assert.deepEqual(await s.listKeys('missing'), []);
      });

      test('updateKey changes the rotation period and the minimum decryption version within 1..latest', async (s) => {
        await seedKey(s);
        await s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: at(1) });
        let k = await s.updateKey('acme', 'k1', { rotationPeriodSeconds: 86_400 });
        assert.equal(k.rotationPeriodSeconds, 86_400);
        k = await s.updateKey('acme', 'k1', { minDecryptionVersion: 2 });
        assert.deepEqual([k.minDecryptionVersion, k.rotationPeriodSeconds], [2, 86_400]);
        k = await s.updateKey('acme', 'k1', { rotationPeriodSeconds: null, minDecryptionVersion: 1 });
        assert.deepEqual([k.minDecryptionVersion, k.rotationPeriodSeconds], [1, null]);
        await expectCode(s.updateKey('acme', 'k1', { minDecryptionVersion: 3 }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.updateKey('acme', 'k1', {}), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.updateKey('acme', 'k1', { latestVersion: 9 } as never), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.updateKey('acme', 'missing', { minDecryptionVersion: 1 }), 'KW_STORE_NOT_FOUND');
        assert.deepEqual(await s.getKey('acme', 'k1'), k);
      });

      test('listKeysDueForRotation: keys with a period whose latest version is that old', async (s) => {
        await seedKey(s, { name: 'hourly', rotationPeriodSeconds: 3600 });
        await seedKey(s, { name: 'never' });
        assert.deepEqual(await s.listKeysDueForRotation(at(3599)), []);
        assert.deepEqual((await s.listKeysDueForRotation(at(3600))).map((k) => k.name), ['hourly']);
        await s.rotateKey({ ns: 'acme', key: 'hourly', wrapped: bytes(32, 2), publicKey: null, created: at(3600) });
        assert.deepEqual(await s.listKeysDueForRotation(at(7199)), []);
        assert.deepEqual((await s.listKeysDueForRotation(at(7200))).map((k) => k.name), ['hourly']);
      });
    });

    void describe('rotation', () => {
      test('rotateKey adds version latest+1 and moves latestVersion', async (s) => {
        await seedKey(s, { type: 'x25519' });
        const v2 = await s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(40, 2), publicKey: bytes(32, 3), created: at(10) });
        assert.deepEqual(v2, {
          ns: 'acme',
          key: 'k1',
          version: 2,
          state: 'enabled',
          wrapped: bytes(40, 2),
          publicKey: bytes(32, 3),
          created: at(10),
          deletionAt: null,
          destroyedAt: null,
        });
        const v3 = await s.rotateKey({ ns: 'acme', key: 'k1', version: 3, wrapped: bytes(40, 4), publicKey: bytes(32, 5), created: at(20) });
        assert.equal(v3.version, 3);
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 3);
        assert.deepEqual((await s.listKeyVersions('acme', 'k1')).map((v) => v.version), [1, 2, 3]);
        assert.equal(await s.getKeyVersion('acme', 'k1', 4), null);
      });

      test('an explicit version that is not latest+1 is a conflict and changes nothing', async (s) => {
        await seedKey(s);
        for (const version of [1, 3, 7]) {
          await expectCode(
            s.rotateKey({ ns: 'acme', key: 'k1', version, wrapped: bytes(32, 2), publicKey: null, created: at(1) }),
            'KW_STORE_CONFLICT',
          );
        }
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1);
        assert.equal((await s.listKeyVersions('acme', 'k1')).length, 1);
      });

      test('rotating a missing key is not found; a public key must match the type', async (s) => {
        await seedKey(s);
        await expectCode(s.rotateKey({ ns: 'acme', key: 'nope', wrapped: bytes(32, 2), publicKey: null, created: T0 }), 'KW_STORE_NOT_FOUND');
        await expectCode(
          s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: bytes(32, 1), created: T0 }),
          'KW_STORE_INVALID_ARGUMENT',
        );
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1);
      });

      test('concurrent rotations each produce exactly one new version, all distinct', async (s) => {
        await seedKey(s);
        const n = 20;
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, i + 1), publicKey: null, created: at(i) }),
          ),
        );
        const numbers = results.map((v) => v.version).sort((a, b) => a - b);
        assert.deepEqual(numbers, Array.from({ length: n }, (_, i) => i + 2));
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, n + 1);
        const stored = await s.listKeyVersions('acme', 'k1');
        assert.equal(stored.length, n + 1);
        // Each rotation's blob landed in the version it was told about.
        for (const r of results) assert.deepEqual(stored[r.version - 1]!.wrapped, r.wrapped);
      });

      test('concurrent rotations insisting on the same version: exactly one wins, the rest conflict', async (s) => {
        await seedKey(s);
        const settled = await Promise.allSettled(
          Array.from({ length: 5 }, (_, i) =>
            s.rotateKey({ ns: 'acme', key: 'k1', version: 2, wrapped: bytes(32, i + 1), publicKey: null, created: at(i) }),
          ),
        );
        const won = settled.filter((r) => r.status === 'fulfilled');
        const lost = settled.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        for (const r of lost) assert.ok(isStoreError(r.reason, 'KW_STORE_CONFLICT'), String(r.reason));
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 2);
        assert.equal((await s.listKeyVersions('acme', 'k1')).length, 2);
      });

      test('concurrent read-then-rotate transactions never duplicate a version', async (s) => {
        await seedKey(s);
        const settled = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            s.transaction(async (tx) => {
              const key = (await tx.getKey('acme', 'k1'))!;
              await sleep(2); // the keyholder generating and wrapping the version
              const v = await tx.rotateKey({
                ns: 'acme',
                key: 'k1',
                version: key.latestVersion + 1,
                wrapped: bytes(32, i + 1),
                publicKey: null,
                created: at(i),
              });
              await tx.appendAuditEvent({ time: at(i), event: event(i), leafHash: leaf(i) });
              return v.version;
            }),
          ),
        );
        const versions: number[] = [];
        for (const r of settled) {
          if (r.status === 'fulfilled') versions.push(r.value);
          else assert.ok(isStoreError(r.reason, 'KW_STORE_CONFLICT'), String(r.reason));
        }
        assert.ok(versions.length >= 1);
        assert.equal(new Set(versions).size, versions.length);
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1 + versions.length);
        assert.equal((await s.listKeyVersions('acme', 'k1')).length, 1 + versions.length);
        assert.equal(await s.auditSize(), versions.length);
      });
    });

    void describe('key version states', () => {
      for (const from of STATES) {
        for (const to of STATES) {
          const allowed = ALLOWED.has(`${from}->${to}`);
          test(`${from} -> ${to} is ${allowed ? 'allowed' : 'refused'}`, async (s) => {
            await seedKey(s);
            const before = await driveTo(s, from);
            if (allowed) {
              const after = await changeTo(s, to);
              assert.equal(after.state, to);
              assert.deepEqual(await s.getKeyVersion('acme', 'k1', 1), after);
            } else {
              await expectCode(changeTo(s, to), 'KW_STORE_INVALID_TRANSITION');
              assert.deepEqual(await s.getKeyVersion('acme', 'k1', 1), before);
            }
          });
        }
      }

      test('scheduling sets deletionAt, cancelling returns to disabled and clears it', async (s) => {
        await seedKey(s);
        const scheduled = await s.setKeyVersionState(ref(1), { state: 'scheduled_for_deletion', deletionAt: at(500) });
        assert.deepEqual([scheduled.state, scheduled.deletionAt], ['scheduled_for_deletion', at(500)]);
        assert.deepEqual(scheduled.wrapped, bytes(48, 0xa1));
        const cancelled = await s.setKeyVersionState(ref(1), { state: 'disabled' });
        assert.deepEqual([cancelled.state, cancelled.deletionAt], ['disabled', null]);
        assert.deepEqual(cancelled.wrapped, bytes(48, 0xa1));
      });

      test('destroy nulls the blob, records the time, and is terminal', async (s) => {
        await seedKey(s, { type: 'ed25519' });
        await s.setKeyVersionState(ref(1), { state: 'scheduled_for_deletion', deletionAt: at(500) });
        const d = await s.destroyKeyVersion(ref(1), at(600));
        assert.deepEqual(d, {
          ns: 'acme',
          key: 'k1',
          version: 1,
          state: 'destroyed',
          wrapped: null,
          publicKey: bytes(32, 0xb1),
          created: T0,
          deletionAt: at(500),
          destroyedAt: at(600),
        });
        await expectCode(s.destroyKeyVersion(ref(1), at(700)), 'KW_STORE_INVALID_TRANSITION');
        for (const state of ['enabled', 'disabled'] as const) {
          await expectCode(s.setKeyVersionState(ref(1), { state }), 'KW_STORE_INVALID_TRANSITION');
        }
        assert.deepEqual(await s.getKeyVersion('acme', 'k1', 1), d);
        // The tombstone stays listed; the key keeps its numbering.
        assert.deepEqual((await s.listKeyVersions('acme', 'k1')).map((v) => v.state), ['destroyed']);
        const v2 = await s.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: bytes(32, 3), created: at(800) });
        assert.equal(v2.version, 2);
      });

      test('setKeyVersionState refuses "destroyed" (destroyKeyVersion does that) and bad changes', async (s) => {
        await seedKey(s);
        await s.setKeyVersionState(ref(1), { state: 'scheduled_for_deletion', deletionAt: at(1) });
        for (const change of [
          { state: 'destroyed' },
          { state: 'scheduled_for_deletion' },
          { state: 'disabled', deletionAt: at(1) },
          { state: 'gone' },
        ]) {
          await expectCode(s.setKeyVersionState(ref(1), change as never), 'KW_STORE_INVALID_ARGUMENT');
        }
        assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'scheduled_for_deletion');
      });

      test('changing a missing version is not found', async (s) => {
        await seedKey(s);
        await expectCode(s.setKeyVersionState(ref(2), { state: 'disabled' }), 'KW_STORE_NOT_FOUND');
        await expectCode(s.destroyKeyVersion(ref(1, 'nope'), at(1)), 'KW_STORE_NOT_FOUND');
        await expectCode(s.setKeyVersionState(ref(0), { state: 'disabled' }), 'KW_STORE_INVALID_ARGUMENT');
      });

      test('listVersionsDueForDestruction: scheduled versions whose date has come', async (s) => {
        await seedKey(s);
        await seedKey(s, { name: 'k2' });
        await s.setKeyVersionState(ref(1), { state: 'scheduled_for_deletion', deletionAt: at(100) });
        await s.setKeyVersionState(ref(1, 'k2'), { state: 'scheduled_for_deletion', deletionAt: at(50) });
        assert.deepEqual(await s.listVersionsDueForDestruction(at(49)), []);
        assert.deepEqual((await s.listVersionsDueForDestruction(at(100))).map((v) => v.key), ['k2', 'k1']);
        await s.destroyKeyVersion(ref(1, 'k2'), at(101));
        await s.setKeyVersionState(ref(1), { state: 'disabled' });
        assert.deepEqual(await s.listVersionsDueForDestruction(at(1000)), []);
      });
    });

    void describe('principals', () => {
      test('create, get, list (sorted by name) and set roles', async (s) => {
        await seedNamespace(s);
        const p = await s.createPrincipal({ id: 'u-2', ns: 'acme', kind: 'person', name: 'zoë müller', roles: ['admin', 'reader'], created: T0 });
        assert.deepEqual(p, { id: 'u-2', ns: 'acme', kind: 'person', name: 'zoë müller', roles: ['admin', 'reader'], created: T0, disabledAt: null });
        await s.createPrincipal({ id: 'u-1', ns: 'acme', kind: 'service', name: 'billing', roles: [], created: T0 });
        assert.deepEqual(await s.getPrincipal('u-2'), p);
        assert.equal(await s.getPrincipal('nobody'), null);
        assert.deepEqual((await s.listPrincipals('acme')).map((x) => x.id), ['u-1', 'u-2']);
        const updated = await s.setPrincipalRoles('u-1', ['writer']);
        assert.deepEqual(updated.roles, ['writer']);
        assert.deepEqual((await s.getPrincipal('u-1'))!.roles, ['writer']);
        await expectCode(s.setPrincipalRoles('nobody', []), 'KW_STORE_NOT_FOUND');
        await expectCode(s.setPrincipalRoles('u-1', ['has space']), 'KW_STORE_INVALID_ARGUMENT');
      });

      test('disable: sets disabledAt once (the first time is kept), touches nothing else; unknown principal not found', async (s) => {
        await seedPrincipal(s);
        await s.createToken({ id: 't1', tokenHash: hexHash(1), principal: 'p1', admin: false, expiresAt: at(3600), created: T0 });
        const before = await s.getPrincipal('p1');
        assert.equal(before!.disabledAt, null);
        const d = await s.disablePrincipal('p1', at(10));
        assert.deepEqual(d, { ...before!, disabledAt: at(10) });
        assert.deepEqual((await s.disablePrincipal('p1', at(20))).disabledAt, at(10));
        assert.deepEqual((await s.getPrincipal('p1'))!.disabledAt, at(10));
        assert.deepEqual((await s.listPrincipals('acme')).map((x) => x.disabledAt), [at(10)]);
        // Tokens are the caller's business (revoked in the same transaction by the API).
        assert.equal((await s.getToken('t1'))!.revokedAt, null);
        await expectCode(s.disablePrincipal('nobody', at(1)), 'KW_STORE_NOT_FOUND');
        await expectCode(s.disablePrincipal('p1', new Date(Number.NaN)), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.disablePrincipal('has space', at(1)), 'KW_STORE_INVALID_ARGUMENT');
      });

      test('duplicate id or (namespace, name) conflicts; missing namespace not found; bad input refused', async (s) => {
        await seedPrincipal(s);
        await seedNamespace(s, 'other');
        const base = { kind: 'service', roles: [], created: T0 } as const;
        await expectCode(s.createPrincipal({ ...base, id: 'p1', ns: 'other', name: 'x' }), 'KW_STORE_CONFLICT');
        await expectCode(s.createPrincipal({ ...base, id: 'p9', ns: 'acme', name: 'svc-p1' }), 'KW_STORE_CONFLICT');
        await s.createPrincipal({ ...base, id: 'p9', ns: 'other', name: 'svc-p1' }); // same name, other namespace
        await expectCode(s.createPrincipal({ ...base, id: 'p8', ns: 'nope', name: 'y' }), 'KW_STORE_NOT_FOUND');
        await expectCode(s.createPrincipal({ ...base, id: 'p7', ns: 'acme', name: 'bell\u0007' }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.createPrincipal({ ...base, id: 'p7', ns: 'acme', name: 'ok', kind: 'robot' } as never), 'KW_STORE_INVALID_ARGUMENT');
        assert.deepEqual((await s.listPrincipals('acme')).map((x) => x.id), ['p1']);
      });
    });

    void describe('tokens', () => {
      test('create, look up by hash and id, list', async (s) => {
        await seedPrincipal(s);
        const t = await s.createToken({ id: 't1', tokenHash: hexHash(1), principal: 'p1', admin: true, expiresAt: at(3600), created: T0 });
        assert.deepEqual(t, { id: 't1', tokenHash: hexHash(1), principal: 'p1', admin: true, expiresAt: at(3600), revokedAt: null, created: T0 });
        await s.createToken({ id: 't2', tokenHash: hexHash(2), principal: 'p1', admin: false, expiresAt: at(60), created: at(1) });
        assert.deepEqual(await s.getTokenByHash(hexHash(1)), t);
        assert.equal((await s.getTokenByHash(hexHash(2)))!.admin, false);
        assert.equal(await s.getTokenByHash(hexHash(3)), null);
        assert.deepEqual(await s.getToken('t1'), t);
        assert.deepEqual((await s.listTokens('p1')).map((x) => x.id), ['t1', 't2']);
        assert.deepEqual(await s.listTokens('nobody'), []);
      });

      test('duplicate id or hash conflicts; unknown principal not found; malformed hash refused', async (s) => {
        await seedPrincipal(s);
        const base = { principal: 'p1', admin: false, expiresAt: at(60), created: T0 };
        await s.createToken({ ...base, id: 't1', tokenHash: hexHash(1) });
        await expectCode(s.createToken({ ...base, id: 't1', tokenHash: hexHash(2) }), 'KW_STORE_CONFLICT');
        await expectCode(s.createToken({ ...base, id: 't2', tokenHash: hexHash(1) }), 'KW_STORE_CONFLICT');
        await expectCode(s.createToken({ ...base, id: 't3', tokenHash: hexHash(3), principal: 'nobody' }), 'KW_STORE_NOT_FOUND');
        for (const bad of [hexHash(4).toUpperCase().replace(/0/g, 'A'), 'abc', hexHash(5) + '0', `${hexHash(6).slice(1)}g`]) {
          await expectCode(s.createToken({ ...base, id: 't4', tokenHash: bad }), 'KW_STORE_INVALID_ARGUMENT');
          await expectCode(s.getTokenByHash(bad), 'KW_STORE_INVALID_ARGUMENT');
        }
        assert.deepEqual((await s.listTokens('p1')).map((x) => x.id), ['t1']);
      });

      test('revocation keeps the first time; revoking all of a principal counts the live ones', async (s) => {
        await seedPrincipal(s);
        const base = { principal: 'p1', admin: false, expiresAt: at(60), created: T0 };
        for (let i = 1; i <= 3; i++) await s.createToken({ ...base, id: `t${i}`, tokenHash: hexHash(i) });
        assert.deepEqual((await s.revokeToken('t1', at(10))).revokedAt, at(10));
        assert.deepEqual((await s.revokeToken('t1', at(20))).revokedAt, at(10));
        await expectCode(s.revokeToken('nope', at(1)), 'KW_STORE_NOT_FOUND');
        assert.equal(await s.revokePrincipalTokens('p1', at(30)), 2);
        assert.deepEqual((await s.listTokens('p1')).map((t) => t.revokedAt), [at(10), at(30), at(30)]);
        assert.equal(await s.revokePrincipalTokens('p1', at(40)), 0);
        await expectCode(s.revokePrincipalTokens('nobody', at(40)), 'KW_STORE_NOT_FOUND');
      });
    });

    void describe('signing keys', () => {
      test('add, get, list, revoke', async (s) => {
        await seedPrincipal(s);
        const k = await s.addSigningKey({ keyId: 'dev-1', principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 9), created: T0 });
        assert.deepEqual(k, { keyId: 'dev-1', principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 9), created: T0, revokedAt: null });
        await s.addSigningKey({ keyId: 'dev-2', principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 8), created: at(1) });
        assert.deepEqual(await s.getSigningKey('dev-1'), k);
        assert.equal(await s.getSigningKey('dev-9'), null);
        assert.deepEqual((await s.listSigningKeys('p1')).map((x) => x.keyId), ['dev-1', 'dev-2']);
        assert.deepEqual((await s.revokeSigningKey('dev-1', at(5))).revokedAt, at(5));
        assert.deepEqual((await s.revokeSigningKey('dev-1', at(6))).revokedAt, at(5));
        await expectCode(s.revokeSigningKey('dev-9', at(5)), 'KW_STORE_NOT_FOUND');
      });

      test('duplicate key id conflicts; unknown principal not found; wrong length or alg refused', async (s) => {
        await seedPrincipal(s);
        const base = { principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 1), created: T0 } as const;
        await s.addSigningKey({ ...base, keyId: 'd' });
        await expectCode(s.addSigningKey({ ...base, keyId: 'd' }), 'KW_STORE_CONFLICT');
        await expectCode(s.addSigningKey({ ...base, keyId: 'e', principal: 'nobody' }), 'KW_STORE_NOT_FOUND');
        await expectCode(s.addSigningKey({ ...base, keyId: 'f', publicKey: bytes(31, 1) }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.addSigningKey({ ...base, keyId: 'g', alg: 'rsa' } as never), 'KW_STORE_INVALID_ARGUMENT');
        assert.deepEqual((await s.listSigningKeys('p1')).map((x) => x.keyId), ['d']);
      });
    });

    void describe('policies', () => {
      const doc = (n: number) => ({ version: n, rules: [{ allow: ['datakey'], keys: ['acme/*'] }], note: 'ü', nested: { a: null, b: true } });

      test('versions 1, 2, … are kept; the latest is in force', async (s) => {
        await seedNamespace(s);
        const p1 = await s.putPolicy({ id: 'pol', ns: 'acme', version: 1, document: doc(1), created: T0 });
        assert.deepEqual(p1, { id: 'pol', ns: 'acme', version: 1, document: doc(1), created: T0 });
        await s.putPolicy({ id: 'pol', ns: 'acme', version: 2, document: doc(2), created: at(1) });
        await s.putPolicy({ id: 'other', ns: 'acme', version: 1, document: [1, 'two'], created: at(2) });
        assert.deepEqual((await s.getPolicy('pol'))!.document, doc(2));
        assert.deepEqual(await s.getPolicy('pol', 1), p1);
        assert.equal(await s.getPolicy('pol', 3), null);
        assert.equal(await s.getPolicy('nope'), null);
        assert.deepEqual((await s.listPolicies('acme')).map((p) => [p.id, p.version]), [['other', 1], ['pol', 2]]);
        assert.deepEqual((await s.listPolicyVersions('pol')).map((p) => p.version), [1, 2]);
      });

      test('a version that is not the next one, or a namespace change, conflicts', async (s) => {
        await seedNamespace(s);
        await seedNamespace(s, 'other');
        await expectCode(s.putPolicy({ id: 'pol', ns: 'acme', version: 2, document: doc(2), created: T0 }), 'KW_STORE_CONFLICT');
        await s.putPolicy({ id: 'pol', ns: 'acme', version: 1, document: doc(1), created: T0 });
        await expectCode(s.putPolicy({ id: 'pol', ns: 'acme', version: 1, document: doc(9), created: T0 }), 'KW_STORE_CONFLICT');
        await expectCode(s.putPolicy({ id: 'pol', ns: 'acme', version: 3, document: doc(3), created: T0 }), 'KW_STORE_CONFLICT');
        await expectCode(s.putPolicy({ id: 'pol', ns: 'other', version: 2, document: doc(2), created: T0 }), 'KW_STORE_CONFLICT');
        await expectCode(s.putPolicy({ id: 'x', ns: 'nope', version: 1, document: doc(1), created: T0 }), 'KW_STORE_NOT_FOUND');
        await expectCode(s.putPolicy({ id: 'x', ns: 'acme', version: 1, document: undefined, created: T0 } as never), 'KW_STORE_INVALID_ARGUMENT');
        assert.deepEqual(await s.listPolicyVersions('pol'), [{ id: 'pol', ns: 'acme', version: 1, document: doc(1), created: T0 }]);
      });
    });

    void describe('audit log', () => {
      test('appends at 0, 1, 2, … and reads back byte-exact', async (s) => {
        assert.equal(await s.auditSize(), 0);
        const odd = '{"z":1,  "a":"é\\u00e9","n":[1.0,2e3]}';
        assert.equal(await s.appendAuditEvent({ time: T0, event: odd, leafHash: leaf(0) }), 0);
        assert.equal(await s.appendAuditEvent({ time: at(1), event: event(1), leafHash: leaf(1) }), 1);
        assert.equal(await s.appendAuditEvent({ time: at(2), event: event(2), leafHash: leaf(2), expectedIdx: 2 }), 2);
        assert.equal(await s.auditSize(), 3);
        assert.deepEqual(await s.getAuditEvent(0), { idx: 0, time: T0, event: odd, leafHash: leaf(0) });
        assert.equal(await s.getAuditEvent(3), null);
        const all = await s.readAuditEvents({ start: 0, end: 3 });
        assert.deepEqual(all.map((e) => e.idx), [0, 1, 2]);
        assert.equal(all[0]!.event, odd);
        assert.deepEqual((await s.readAuditEvents({ start: 1, end: 100 })).map((e) => e.idx), [1, 2]);
        assert.deepEqual(await s.readAuditEvents({ start: 5, end: 9 }), []);
        assert.deepEqual(await s.readAuditEvents({ start: 2, end: 2 }), []);
      });

      test('concurrent appends get distinct, gapless indices', async (s) => {
        const n = 50;
        const idx = await Promise.all(
          Array.from({ length: n }, (_, i) => s.appendAuditEvent({ time: at(i), event: event(i), leafHash: leaf(i) })),
        );
        assert.deepEqual([...idx].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
        const stored = await s.readAuditEvents({ start: 0, end: n });
        assert.deepEqual(stored.map((e) => e.idx), Array.from({ length: n }, (_, i) => i));
        // Each append's event is at the index it was told.
        idx.forEach((k, i) => assert.equal(stored[k]!.event, event(i)));
      });

      test('a rolled-back append leaves no gap', async (s) => {
        await s.appendAuditEvent({ time: T0, event: event(0), leafHash: leaf(0) });
        await assert.rejects(
          s.transaction(async (tx) => {
            assert.equal(await tx.appendAuditEvent({ time: T0, event: event(1), leafHash: leaf(1) }), 1);
            assert.equal(await tx.appendAuditEvent({ time: T0, event: event(2), leafHash: leaf(2) }), 2);
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await s.auditSize(), 1);
        assert.equal(await s.appendAuditEvent({ time: T0, event: event(9), leafHash: leaf(9) }), 1);
        assert.deepEqual((await s.readAuditEvents({ start: 0, end: 10 })).map((e) => e.event), [event(0), event(9)]);
      });

      test('an expected index that is not the next one conflicts', async (s) => {
        await s.appendAuditEvent({ time: T0, event: event(0), leafHash: leaf(0) });
        for (const expectedIdx of [0, 2]) {
          await expectCode(s.appendAuditEvent({ time: T0, event: event(1), leafHash: leaf(1), expectedIdx }), 'KW_STORE_CONFLICT');
        }
        assert.equal(await s.auditSize(), 1);
      });

      test('bad events, hashes and ranges are refused and change nothing', async (s) => {
        for (const bad of [
          { time: T0, event: '[1,2]', leafHash: leaf(0) },
          { time: T0, event: 'not json', leafHash: leaf(0) },
          { time: T0, event: '"str"', leafHash: leaf(0) },
          { time: T0, event: event(0), leafHash: bytes(31, 0) },
          { time: T0, event: event(0), leafHash: 'ab'.repeat(32) },
          { time: new Date(Number.NaN), event: event(0), leafHash: leaf(0) },
          { time: T0, event: event(0), leafHash: leaf(0), expectedIdx: -1 },
        ]) {
          await expectCode(s.appendAuditEvent(bad as never), 'KW_STORE_INVALID_ARGUMENT');
        }
        assert.equal(await s.auditSize(), 0);
        await expectCode(s.readAuditEvents({ start: 3, end: 2 }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.readAuditEvents({ start: 0, end: 10_001 }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.readAuditEvents({ start: -1, end: 2 }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.getAuditEvent(-1), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.getAuditEvent(1.5), 'KW_STORE_INVALID_ARGUMENT');
      });

      test('checkpoints: add, latest, get; size bounded by the log; no duplicates', async (s) => {
        assert.equal(await s.latestAuditCheckpoint(), null);
        for (let i = 0; i < 5; i++) await s.appendAuditEvent({ time: at(i), event: event(i), leafHash: leaf(i) });
        const c0 = await s.addAuditCheckpoint({ size: 0, root: leaf(100), note: 'keyward.example/log\n0\n…\n', created: T0 });
        assert.deepEqual(c0, { size: 0, root: leaf(100), note: 'keyward.example/log\n0\n…\n', created: T0 });
        const c3 = await s.addAuditCheckpoint({ size: 3, root: leaf(103), note: 'n3', created: at(3) });
        await s.addAuditCheckpoint({ size: 2, root: leaf(102), note: 'n2', created: at(4) });
        assert.deepEqual(await s.latestAuditCheckpoint(), c3);
        assert.deepEqual(await s.getAuditCheckpoint(3), c3);
        assert.equal(await s.getAuditCheckpoint(4), null);
        await expectCode(s.addAuditCheckpoint({ size: 3, root: leaf(1), note: 'again', created: at(5) }), 'KW_STORE_CONFLICT');
        await expectCode(s.addAuditCheckpoint({ size: 6, root: leaf(1), note: 'ahead', created: at(5) }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.addAuditCheckpoint({ size: 4, root: bytes(31, 1), note: 'short', created: at(5) }), 'KW_STORE_INVALID_ARGUMENT');
        await expectCode(s.addAuditCheckpoint({ size: 4, root: leaf(1), note: '', created: at(5) }), 'KW_STORE_INVALID_ARGUMENT');
        const c5 = await s.addAuditCheckpoint({ size: 5, root: leaf(105), note: 'n5', created: at(6) });
        assert.deepEqual(await s.latestAuditCheckpoint(), c5);
        assert.deepEqual(await s.getAuditCheckpoint(3), c3);
      });
    });

    void describe('meta', () => {
      test('get, set, overwrite; schema_version is reserved', async (s) => {
        assert.equal(await s.getMeta('init_id'), null);
        await s.setMeta('init_id', 'abc');
        await s.setMeta('init_id', 'def');
        assert.equal(await s.getMeta('init_id'), 'def');
        const v = await s.schemaVersion();
        await expectCode(s.setMeta('schema_version', '999'), 'KW_STORE_INVALID_ARGUMENT');
        assert.equal(await s.schemaVersion(), v);
        await expectCode(s.setMeta('bad key', 'x'), 'KW_STORE_INVALID_ARGUMENT');
      });
    });

    void describe('transactions', () => {
      test('commits every write together and returns the value of fn', async (s) => {
        await seedKey(s);
        const out = await s.transaction(async (tx) => {
          const v = await tx.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: at(1) });
          const idx = await tx.appendAuditEvent({ time: at(1), event: event(1), leafHash: leaf(1) });
          return { version: v.version, idx };
        });
        assert.deepEqual(out, { version: 2, idx: 0 });
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 2);
        assert.equal(await s.auditSize(), 1);
      });

      test('a throw inside fn rolls back every write and rethrows the same error', async (s) => {
        await seedKey(s);
        await seedPrincipal(s);
        const boom = new Error('boom');
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.createNamespace({ name: 'ghost', created: T0 });
            await tx.createKey({ ns: 'ghost', name: 'g', type: 'aes256', created: T0, firstVersion: { wrapped: bytes(32, 1), publicKey: null } });
            await tx.rotateKey({ ns: 'acme', key: 'k1', wrapped: bytes(32, 2), publicKey: null, created: at(1) });
            await tx.setKeyVersionState(ref(1), { state: 'disabled' });
            await tx.updateKey('acme', 'k1', { minDecryptionVersion: 2 });
            await tx.createPrincipal({ id: 'p2', ns: 'acme', kind: 'person', name: 'x', roles: [], created: T0 });
            await tx.setPrincipalRoles('p1', ['changed']);
            await tx.createToken({ id: 't', tokenHash: hexHash(7), principal: 'p1', admin: true, expiresAt: at(9), created: T0 });
            await tx.addSigningKey({ keyId: 'sk', principal: 'p1', alg: 'ed25519', publicKey: bytes(32, 1), created: T0 });
            await tx.putPolicy({ id: 'pol', ns: 'acme', version: 1, document: {}, created: T0 });
            await tx.appendAuditEvent({ time: T0, event: event(0), leafHash: leaf(0) });
            await tx.addAuditCheckpoint({ size: 1, root: leaf(1), note: 'n', created: T0 });
            await tx.setMeta('m', 'v');
            throw boom;
          }),
          (e) => e === boom,
        );
        assert.equal(await s.getNamespace('ghost'), null);
        assert.equal(await s.getKey('ghost', 'g'), null);
        const k = (await s.getKey('acme', 'k1'))!;
        assert.deepEqual([k.latestVersion, k.minDecryptionVersion], [1, 1]);
        assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled');
        assert.equal(await s.getKeyVersion('acme', 'k1', 2), null);
        assert.equal(await s.getPrincipal('p2'), null);
        assert.deepEqual((await s.getPrincipal('p1'))!.roles, ['reader']);
        assert.equal(await s.getToken('t'), null);
        assert.equal(await s.getSigningKey('sk'), null);
        assert.equal(await s.getPolicy('pol'), null);
        assert.equal(await s.auditSize(), 0);
        assert.equal(await s.latestAuditCheckpoint(), null);
        assert.equal(await s.getMeta('m'), null);
      });

      test('a failed operation caught inside fn leaves nothing; the rest commits', async (s) => {
        await seedKey(s);
        await s.transaction(async (tx) => {
          await tx.createNamespace({ name: 'kept', created: T0 });
          await expectCode(tx.createNamespace({ name: 'kept', created: T0 }), 'KW_STORE_CONFLICT');
          await expectCode(tx.rotateKey({ ns: 'acme', key: 'k1', version: 5, wrapped: bytes(32, 2), publicKey: null, created: T0 }), 'KW_STORE_CONFLICT');
          await expectCode(tx.destroyKeyVersion(ref(1), T0), 'KW_STORE_INVALID_TRANSITION');
        });
        assert.deepEqual((await s.listNamespaces()).map((n) => n.name), ['acme', 'kept']);
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1);
        assert.equal((await s.getKeyVersion('acme', 'k1', 1))!.state, 'enabled');
      });

      test('a concurrent reader never sees writes that are rolled back', async (s) => {
        let inside!: () => void;
        const entered = new Promise<void>((r) => (inside = r));
        const txp = s.transaction(async (tx) => {
          await tx.createNamespace({ name: 'ghost', created: T0 });
          await tx.appendAuditEvent({ time: T0, event: event(0), leafHash: leaf(0) });
          inside();
          await sleep(20);
          throw new Error('abort');
        });
        await entered;
        const reads = Promise.all([s.getNamespace('ghost'), s.auditSize()]);
        await assert.rejects(txp, /abort/);
        assert.deepEqual(await reads, [null, 0]);
      });

      test('using the outer store inside fn is misuse, and rolls back', async (s) => {
        await expectCode(
          s.transaction(async (tx) => {
            await tx.createNamespace({ name: 'a', created: T0 });
            await s.getNamespace('a');
          }),
          'KW_STORE_TRANSACTION_MISUSE',
        );
        assert.equal(await s.getNamespace('a'), null);
      });

      test('a nested transaction is misuse', async (s) => {
        await expectCode(
          s.transaction(() => s.transaction(() => Promise.resolve(1))),
          'KW_STORE_TRANSACTION_MISUSE',
        );
        assert.deepEqual(await s.listNamespaces(), []);
      });

      test('a transaction handle used after its transaction ended is misuse', async (s) => {
        let leaked: Parameters<Parameters<Store['transaction']>[0]>[0] | undefined;
        await s.transaction((tx) => {
          leaked = tx;
          return Promise.resolve();
        });
        await expectCode(leaked!.createNamespace({ name: 'late', created: T0 }), 'KW_STORE_TRANSACTION_MISUSE');
        assert.equal(await s.getNamespace('late'), null);
      });

      test('concurrent transactions and single operations all land, none lost', async (s) => {
        await seedNamespace(s);
        await Promise.all([
          ...Array.from({ length: 10 }, (_, i) =>
            s.transaction(async (tx) => {
              await tx.createNamespace({ name: `tx-${i}`, created: T0 });
              await sleep(1);
              await tx.appendAuditEvent({ time: T0, event: event(i), leafHash: leaf(i) });
            }),
          ),
          ...Array.from({ length: 10 }, (_, i) => s.createNamespace({ name: `op-${i}`, created: T0 })),
        ]);
        assert.equal((await s.listNamespaces()).length, 21);
        assert.equal(await s.auditSize(), 10);
      });
    });

    void describe('lifecycle', () => {
      test('checkpoint() succeeds on an idle store', async (s) => {
        await seedKey(s);
        await s.checkpoint();
        assert.equal((await s.getKey('acme', 'k1'))!.latestVersion, 1);
      });

      test('close waits for a running transaction; later calls are KW_STORE_CLOSED; closing twice is fine', async () => {
        const s = await open();
        const txp = s.transaction(async (tx) => {
          await sleep(10);
          await tx.createNamespace({ name: 'late', created: T0 });
          return 'done';
        });
        const closed = s.close();
        assert.equal(await txp, 'done');
        await closed;
        await expectCode(s.getNamespace('late'), 'KW_STORE_CLOSED');
        await expectCode(s.transaction(() => Promise.resolve()), 'KW_STORE_CLOSED');
        await s.close();
      });
    });

    void describe('stored rows are validated when read', () => {
      for (const scenario of Object.keys(CORRUPTION_READS) as CorruptionScenario[]) {
        void it(
          `${scenario}: every read of the damaged row is KW_STORE_CORRUPT_ROW`,
          { skip: harness === undefined ? 'the backend supplies no corruption harness' : false },
          async () => {
            const s = await open();
            try {
              await seedCorruptionFixture(s);
              await harness!.corrupt(s, scenario);
              for (const read of CORRUPTION_READS[scenario](s)) await expectCode(read(), 'KW_STORE_CORRUPT_ROW');
            } finally {
              await s.close();
            }
          },
        );
      }
    });
  });
}

/** Creates the rows `CORRUPTION_FIXTURE` names. */
async function seedCorruptionFixture(s: Store): Promise<void> {
  const f = CORRUPTION_FIXTURE;
  await seedKey(s, { ns: f.ns, name: f.key });
  await seedPrincipal(s, f.principal, f.ns);
  await s.createToken({ id: f.token, tokenHash: f.tokenHash, principal: f.principal, admin: false, expiresAt: at(60), created: T0 });
  await s.addSigningKey({ keyId: f.signingKey, principal: f.principal, alg: 'ed25519', publicKey: bytes(32, 1), created: T0 });
  await s.putPolicy({ id: f.policy, ns: f.ns, version: 1, document: { allow: [] }, created: T0 });
  for (let i = 0; i < f.auditEvents; i++) await s.appendAuditEvent({ time: at(i), event: event(i), leafHash: leaf(i) });
  await s.addAuditCheckpoint({ size: f.checkpointSize, root: leaf(99), note: 'note', created: T0 });
}
