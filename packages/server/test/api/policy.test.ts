/** Policy decisions: a hand-written table of outcomes, and a property: narrowing a policy never widens access. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { OPERATIONS, decide, type Grant, type Operation, type PolicyDocument, type PolicySubject } from '../../src/api/policy.js';
import { RateLimiter } from '../../src/api/limits.js';

const policy: PolicyDocument = {
  grants: [
    { principals: ['svc-orders'], operations: ['datakey', 'unwrap'], keys: ['billing/orders'], context: { table: '*' } },
    { roles: ['reader'], operations: ['unwrap'], keys: ['billing/tmp-*'] },
    { roles: ['tenant-acme'], operations: ['datakey'], keys: ['*'], context: { tenant: 'acme' } },
  ],
};
const svc: PolicySubject = { id: 'svc-orders', roles: [], admin: false };
const reader = { id: 'bob', roles: ['reader'], admin: false };
const acme = { id: 'acme-app', roles: ['tenant-acme'], admin: false };
const admin = { id: 'root', roles: [], admin: true };

const TABLE: [string, PolicySubject, Operation, string, Record<string, string>, boolean][] = [
  ['grant by principal with context', svc, 'datakey', 'billing/orders', { table: 'x' }, true],
  ['context key missing', svc, 'datakey', 'billing/orders', {}, false],
  ['operation not granted', svc, 'encrypt', 'billing/orders', { table: 'x' }, false],
  ['other key', svc, 'datakey', 'billing/orders2', { table: 'x' }, false],
  ['prefix pattern', reader, 'unwrap', 'billing/tmp-1', {}, true],
  ['prefix pattern, other op', reader, 'datakey', 'billing/tmp-1', {}, false],
  ['prefix does not match', reader, 'unwrap', 'billing/tm', {}, false],
  ['role with exact context value', acme, 'datakey', 'any/key', { tenant: 'acme' }, true],
  ['role with wrong context value', acme, 'datakey', 'any/key', { tenant: 'evil' }, false],
  ['admin: control plane', admin, 'keys.rotate', 'billing/orders', {}, true],
  ['admin: no data plane without grant', admin, 'datakey', 'billing/orders', { table: 'x' }, false],
  ['admin: no unwrap', admin, 'unwrap', 'billing/tmp-1', {}, false],
  ['non-admin: no control plane', svc, 'keys.create', 'billing/orders', {}, false],
  ['nobody else', { id: 'eve', roles: [], admin: false }, 'datakey', 'billing/orders', { table: 'x' }, false],
];

for (const [name, who, op, key, ctx, expected] of TABLE) {
  void test(`decide: ${name}`, () => {
    assert.equal(decide(who, op, key, ctx, [policy]).allowed, expected);
  });
}

void test('default deny with no policies', () => {
  for (const op of OPERATIONS) if (!op.includes('.')) assert.equal(decide(svc, op, 'a/b', {}, []).allowed, false);
});

const ident = fc.constantFrom('a', 'b', 'c');
const grantArb: fc.Arbitrary<Grant> = fc.record({
  principals: fc.option(fc.array(ident, { maxLength: 2 }), { nil: undefined }),
  roles: fc.option(fc.array(ident, { maxLength: 2 }), { nil: undefined }),
  operations: fc.array(fc.constantFrom<Operation>('datakey', 'unwrap', 'keys.rotate'), { minLength: 1, maxLength: 3 }),
  keys: fc.array(fc.constantFrom('n/k1', 'n/k*', 'n/*', '*', 'm/k1'), { minLength: 1, maxLength: 3 }),
  context: fc.option(fc.dictionary(fc.constantFrom('t', 'u'), fc.constantFrom('1', '2', '*'), { maxKeys: 2 }), { nil: undefined }),
});
const requestArb = fc.record({
  who: fc.record({ id: ident, roles: fc.array(ident, { maxLength: 2 }), admin: fc.constant(false) }),
  op: fc.constantFrom<Operation>('datakey', 'unwrap', 'keys.rotate'),
  key: fc.constantFrom('n/k1', 'n/k2', 'm/k1'),
  ctx: fc.dictionary(fc.constantFrom('t', 'u'), fc.constantFrom('1', '2'), { maxKeys: 2 }),
});

/** One narrowing step: drop a grant, drop a pattern, drop an operation, or add a context condition. */
const narrow = (p: PolicyDocument, pick: number, kind: number): PolicyDocument => {
  if (p.grants.length === 0) return p;
  const i = pick % p.grants.length;
  const g = p.grants[i]!;
  const grants = [...p.grants];
  switch (kind % 4) {
    case 0: grants.splice(i, 1); break;
    case 1: if (g.keys.length > 1) grants[i] = { ...g, keys: g.keys.slice(1) }; break;
    case 2: if (g.operations.length > 1) grants[i] = { ...g, operations: g.operations.slice(1) }; break;
    default: if (!g.context || !('u' in g.context)) grants[i] = { ...g, context: { ...(g.context ?? {}), u: '1' } }; break;
  }
  return { grants };
};

void test('property: narrowing a policy never widens access', () => {
  fc.assert(fc.property(fc.array(grantArb, { maxLength: 4 }), requestArb, fc.nat(), fc.nat(), (grants, r, pick, kind) => {
    const wide = { grants };
    const narrowed = narrow(wide, pick, kind);
    const after = decide(r.who, r.op, r.key, r.ctx, [narrowed]).allowed;
    const before = decide(r.who, r.op, r.key, r.ctx, [wide]).allowed;
    return !after || before;
  }), { numRuns: 2000 });
});

void test('rate limiter: burst then refuse; bounded buckets', () => {
  let now = 0;
  const l = new RateLimiter({ ratePerSecond: 1, burst: 3, maxBuckets: 10, now: () => now });
  assert.deepEqual([l.take('a'), l.take('a'), l.take('a'), l.take('a')], [true, true, true, false]);
  now += 1000;
  assert.equal(l.take('a'), true);
  for (let i = 0; i < 100; i++) l.take(`ip${i}`);
  assert.ok(l.size <= 10);
});
