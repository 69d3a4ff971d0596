/**
 * The directory from the browser (docs/console.md §The seal demo and the
 * directory): `@keyward/client`'s verifying `Directory` over this origin's
 * public `/v1/directory` routes. Every search answer is checked in the page
 * by `@keyward/directory` (KEYTRANS proofs against the log configuration,
 * no rollback) and every identity record by `@keyward/client` (device keys,
 * change signatures); a failure throws and nothing is sealed.
 *
 * The log configuration (its signature and VRF public keys) is pinned in
 * this browser on first use (`localStorage`; public, not a credential), and a
 * server that later serves another one is refused (`KT_BAD_RESPONSE`). A
 * server that controls the configuration it serves on first use could serve
 * its own — compare `keyward directory config` and pin deliberately. Witness
 * cosignatures are not checked in the page (it has no witness keys of its own).
 */
import { Directory, fetchTransport } from '@keyward/client';

const PIN = 'keyward-console.directory-configuration';

let cached: Promise<{ dir: Directory; pinned: boolean }> | null = null;

/** The page's verifying directory client (one per page, so it remembers the newest head it verified). */
export function directory(): Promise<{ dir: Directory; pinned: boolean }> {
  cached ??= (async () => {
    const t = fetchTransport(location.origin, { fetch: (input, init) => fetch(input, { ...init, credentials: 'omit', cache: 'no-store', redirect: 'error' }) });
    const stored = localStorage.getItem(PIN);
    if (stored !== null) return { dir: await Directory.connect(t, { pinned: stored }), pinned: true };
    const configuration = await Directory.configuration(t);
    const dir = await Directory.connect(t, { pinned: configuration });
    localStorage.setItem(PIN, configuration);
    return { dir, pinned: false };
  })();
  // A failed connection is not kept: the next attempt asks again.
  cached.catch(() => { cached = null; });
  return cached;
}

/** The stable code of a directory, record or service error, or null. */
export function errorCode(e: unknown): string | null {
  const c = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof c === 'string' && /^[A-Z][A-Z0-9_]+$/.test(c) ? c : null;
}

/** base64url (no padding) → bytes. */
export function fromB64u(s: string): Uint8Array {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}
