/**
 * Property tests of verifyRequest on hostile input: random mutations of a
 * valid request's signature fields, target, method and body. Verification
 * either throws an HttpSigError or (for a mutation that does not change the
 * meaning, such as extra optional whitespace) vouches for exactly what was
 * signed. Nothing else ever escapes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { HttpSigError, signRequest, verifyRequest, type VerifiedRequest } from '../src/index.js';
import { targetParts } from '../src/httpsig/base.js';
import { KEY_ID, NOW, SEED, baseRequest, verifyOpts } from './httpsig-helpers.js';

const FIELDS = ['Signature-Input', 'Signature', 'Content-Digest'] as const;
const ALPHABET = [...'abkwz09-_.*=,;:()"\' \t\\/+?@%#AZ\n\r\u0000\u00e9\u{1F600}'];
const char = fc.oneof(fc.constantFrom(...ALPHABET), fc.string({ minLength: 1, maxLength: 1 }));

type Mutation =
  | { op: 'replace' | 'insert'; at: number; c: string }
  | { op: 'delete'; at: number; n: number }
  | { op: 'truncate'; at: number }
  | { op: 'swap'; at: number; to: number }
  | { op: 'duplicate' }
  | { op: 'random'; s: string };

const pos = fc.nat({ max: 400 });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom('replace' as const, 'insert' as const), at: pos, c: char }),
  fc.record({ op: fc.constant('delete' as const), at: pos, n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: pos }),
  fc.record({ op: fc.constant('swap' as const), at: pos, to: pos }),
  fc.record({ op: fc.constant('duplicate' as const) }),
  fc.record({ op: fc.constant('random' as const), s: fc.string({ maxLength: 80 }) }),
);

function apply(s: string, m: Mutation): string | string[] {
  const at = (i: number) => (s.length === 0 ? 0 : i % (s.length + 1));
  switch (m.op) {
    case 'replace': return s.slice(0, at(m.at)) + m.c + s.slice(at(m.at) + 1);
    case 'insert': return s.slice(0, at(m.at)) + m.c + s.slice(at(m.at));
    case 'delete': return s.slice(0, at(m.at)) + s.slice(at(m.at) + m.n);
    case 'truncate': return s.slice(0, at(m.at));
    case 'swap': {
      const a = [...s];
      const i = at(m.at) % Math.max(1, a.length);
      const j = at(m.to) % Math.max(1, a.length);
      if (a.length > 1) [a[i], a[j]] = [a[j]!, a[i]!];
      return a.join('');
    }
    case 'duplicate': return [s, s];
    case 'random': return m.s;
  }
}

/** Runs verification; returns the result, or undefined for an HttpSigError; anything else fails the property. */
async function verdict(req: Parameters<typeof verifyRequest>[0]): Promise<VerifiedRequest | undefined> {
  try {
    return await verifyRequest(req, verifyOpts());
  } catch (e) {
    if (e instanceof HttpSigError) return undefined;
    throw e;
  }
}

function fresh(nonce: string) {
  const req = baseRequest();
  const sig = signRequest(req, { keyId: KEY_ID, privateKey: SEED, created: NOW, nonce });
  return { req, sig };
}

const nonce = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/);

void describe('verifyRequest under random mutation', () => {
  void test('mutated signature fields: HttpSigError, or exactly the signed meaning', async () => {
    await fc.assert(
      fc.asyncProperty(nonce, fc.constantFrom(...FIELDS), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (n, field, ms) => {
        const { req, sig } = fresh(n);
        let value: string | string[] = sig[field];
        for (const m of ms) value = Array.isArray(value) ? value.map((v) => apply(v, m) as string) : apply(value, m);
        const v = await verdict({ ...req, headers: { ...req.headers, ...sig, [field]: value } });
        if (v !== undefined) {
          assert.equal(v.keyId, KEY_ID);
          assert.equal(v.nonce, n);
          assert.equal(v.created, NOW);
        }
      }),
      { numRuns: 1500 },
    );
  });

  void test('mutated method, URL or body: HttpSigError unless unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(nonce, fc.constantFrom('method', 'url', 'body'), mutation, async (n, part, m) => {
        const { req, sig } = fresh(n);
        const before = req[part];
        const mutated = apply(before, m);
        const after = Array.isArray(mutated) ? mutated.join(', ') : mutated;
        const v = await verdict({ ...req, headers: { ...req.headers, ...sig }, [part]: after });
        if (v !== undefined) {
          // Only a mutation the base cannot see may pass: the same text, or a URL whose covered
          // parts (authority, path, query) are unchanged, e.g. a fragment or the scheme, which
          // this profile does not cover.
          const same = after === before || (part === 'url' && JSON.stringify(targetParts(after)) === JSON.stringify(targetParts(before)));
          assert.ok(same, `accepted ${part}: ${JSON.stringify(after)}`);
        }
      }),
      { numRuns: 800 },
    );
  });

  void test('random header maps: HttpSigError only', async () => {
    const value = fc.oneof(fc.string({ maxLength: 60 }), fc.array(fc.string({ maxLength: 30 }), { maxLength: 3 }));
    const headers = fc.dictionary(fc.constantFrom('signature-input', 'Signature', 'content-digest', 'x'), value);
    await fc.assert(
      fc.asyncProperty(headers, async (h) => {
        assert.equal(await verdict({ ...baseRequest(), headers: h }), undefined);
      }),
      { numRuns: 500 },
    );
  });
});
