/** The keyholder's cache of unwrapped key versions (version-cache.ts). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateVersion, loadVersion } from '../../src/keyholder/keys.js';
import { VersionCache } from '../../src/keyholder/version-cache.js';

const mk = new Uint8Array(randomBytes(32));
const ref = (version: number) => ({ ns: 'app', key: 'files', version, type: 'aes256' as const });

void describe('VersionCache', () => {
  void test('a hit needs the same reference and the exact blob; another blob loads (and is checked) again', async () => {
    const cache = new VersionCache(4);
    const g = await generateVersion(mk, ref(1));
    let loads = 0;
    const load = (wrapped: Uint8Array) => () => { loads++; return loadVersion(mk, ref(1), wrapped); };
    const a = await cache.get(ref(1), g.wrapped, undefined, load(g.wrapped));
    assert.equal(await cache.get(ref(1), g.wrapped, undefined, load(g.wrapped)), a);
    assert.equal(loads, 1);
    const forged = g.wrapped.slice();
    forged[forged.length - 1]! ^= 1;
    await assert.rejects(cache.get(ref(1), forged, undefined, load(forged)), { code: 'KW_WRAPPED_KEY_MISMATCH' });
    assert.equal(loads, 2);
    assert.equal(cache.size, 1);
  });

  void test('evict disposes every handle of a version; clear disposes all; capacity drops the least recently used', async () => {
    const cache = new VersionCache(2);
    const vs = await Promise.all([1, 2, 3].map((v) => generateVersion(mk, ref(v))));
    const h = await Promise.all(vs.map((g, i) => cache.get(ref(i + 1), g.wrapped, undefined, () => loadVersion(mk, ref(i + 1), g.wrapped))));
    assert.equal(cache.size, 2); // v1 dropped (not disposed: an operation may still hold it)
    assert.doesNotThrow(() => h[0]!.secretKey('aes256'));
    cache.evict(ref(2));
    assert.throws(() => h[1]!.secretKey('aes256'), { code: 'KW_SEALED' });
    assert.equal(cache.size, 1);
    cache.clear();
    assert.throws(() => h[2]!.secretKey('aes256'), { code: 'KW_SEALED' });
    assert.equal(cache.size, 0);
  });
});
