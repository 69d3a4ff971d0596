/**
 * Runs the kdf.ts / hpke.ts known-answer suites with `#platform` redirected to the web adapter
 * (WebCrypto AES-GCM, @noble ChaCha20-Poly1305 / X25519 / P-256 / HMAC), which Node never selects by
 * itself because the `node` export condition is always on. A resolve hook, registered before the code
 * under test is imported, maps the `#platform` specifier to src/platform/web.ts; node:test runs each
 * test file in its own process, so no other file is affected.
 */
import { register } from 'node:module';

const webAdapter = new URL('../../src/platform/web.ts', import.meta.url).href;
const hook = `export async function resolve(specifier, context, next) {
  return next(specifier === '#platform' ? ${JSON.stringify(webAdapter)} : specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);

const { defineHkdfWycheproof, defineHpkePq, defineRfc9180 } = await import('./kat-suites.js');
defineHkdfWycheproof('web');
defineRfc9180('web');
defineHpkePq('web');
