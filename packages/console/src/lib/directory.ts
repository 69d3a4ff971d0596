/**
 * The directory from the browser (docs/console.md §The seal demo and the
 * directory): `@keyward/client`'s verifying `Directory` over this origin's
 * public `/v1/directory` routes. Every search answer is checked in the page
 * by `@keyward/directory` (KEYTRANS proofs against the log configuration,
 * no rollback) and every identity record by `@keyward/client` (device keys,
 * change signatures); a failure throws and nothing is sealed.
 *
 * **What the page trusts is pinned in this browser** (IndexedDB,
 * `keyward-console` / `pins`, lib/idb.ts; public values, not credentials):
 * the log configuration (its signature and VRF public keys) and, when the
 * deployment has directory witnesses, their configuration (the head log's
 * key, each witness's cosignature key, k) — both from `GET
 * /v1/directory/config`, taken on first use. With witnesses pinned, every
 * head the page uses (a search's, or the Directory page's current head) is
 * accepted only as the latest entry of a head-log checkpoint cosigned by k of
 * the *pinned* witnesses within a day (`DirectoryWitnessCheck`:
 * `TLOG_NOT_ENOUGH_COSIGNATURES`, `TLOG_BAD_SIGNATURE`, `TLOG_BAD_PROOF`,
 * `TLOG_STALE_COSIGNATURES`). A server that later presents another
 * configuration is refused ({@link PinChanged}: `KT_BAD_RESPONSE` for the log
 * configuration, `KW_CLIENT_WITNESSES_CHANGED` for the witnesses, also when
 * it drops them) until the user pins again with {@link repin}. A deployment
 * that had no witnesses when the browser pinned gets its witnesses pinned
 * when it first presents them (adding checks is no downgrade).
 *
 * A server that controls what it presents on first use could present its
 * own — compare the pinned values with what the operator published.
 */
import { Directory, checkPinnedWitnesses, fetchTransport, witnessConfigChanges, type DirectoryWitnessConfig } from '@keyward/client';
import { idb } from './idb.js';

/** Where the log configuration was pinned before it moved to IndexedDB (read once, then removed). */
const LEGACY_PIN = 'keyward-console.directory-configuration';
const PIN_KEY = 'directory';

/** What the server presents: `GET /v1/directory/config`'s configuration and witnesses. */
export interface Presented {
  readonly configuration: string;
  readonly witnesses: DirectoryWitnessConfig | null;
}

/** What this browser pinned about this origin's directory. */
export interface DirectoryPin extends Presented {
  /** When the log configuration was pinned (ISO 8601). */
  readonly pinnedAt: string;
  /** When the witness configuration was pinned; null while none is. */
  readonly witnessesPinnedAt: string | null;
}

/** How the pin came about on this connection: held already, taken now, or witnesses added now. */
export type PinState = 'pinned' | 'first-use' | 'witnesses-first-use';

export interface Connected {
  readonly dir: Directory;
  readonly pin: DirectoryPin;
  readonly state: PinState;
}

/**
 * The server presents another configuration than the one pinned in this browser: the directory is
 * not used. `changes` says what differs; `presented` is what {@link repin} would pin.
 */
export class PinChanged extends Error {
  constructor(
    readonly code: 'KT_BAD_RESPONSE' | 'KW_CLIENT_WITNESSES_CHANGED',
    message: string,
    readonly pin: DirectoryPin,
    readonly presented: Presented,
    readonly changes: readonly string[],
  ) {
    super(message);
    this.name = 'PinChanged';
  }
}

const transport = () => fetchTransport(location.origin, { fetch: (input, init) => fetch(input, { ...init, credentials: 'omit', cache: 'no-store', redirect: 'error' }) });

async function savePin(pin: DirectoryPin): Promise<void> {
  await idb('pins', 'readwrite', (s) => s.put(pin, PIN_KEY));
}

/** The pin held by this browser, or null (nothing pinned yet). */
export async function loadPin(): Promise<DirectoryPin | null> {
  const pin = await idb<DirectoryPin | undefined>('pins', 'readonly', (s) => s.get(PIN_KEY));
  if (pin !== undefined) return pin;
  // A log configuration pinned by an earlier console (localStorage): keep it, in IndexedDB now.
  const legacy = localStorage.getItem(LEGACY_PIN);
  if (legacy === null) return null;
  const moved: DirectoryPin = { configuration: legacy, witnesses: null, pinnedAt: new Date().toISOString(), witnessesPinnedAt: null };
  await savePin(moved);
  localStorage.removeItem(LEGACY_PIN);
  return moved;
}

/**
 * Pins `presented` (what a {@link PinChanged} showed the user) in place of the current pin; the
 * next {@link directory} checks the server against it.
 */
export async function repin(presented: Presented): Promise<void> {
  const now = new Date().toISOString();
  await savePin({ configuration: presented.configuration, witnesses: presented.witnesses, pinnedAt: now, witnessesPinnedAt: presented.witnesses === null ? null : now });
  cached = null;
}

let cached: Promise<Connected> | null = null;

/**
 * The page's verifying directory client (one per page, so it remembers the newest head it
 * verified), checked against the pin (taken now on first use). Throws {@link PinChanged} when the
 * server presents another configuration.
 */
export function directory(): Promise<Connected> {
  cached ??= (async () => {
    const t = transport();
    const presented = await Directory.published(t);
    const held = await loadPin();
    const now = new Date().toISOString();
    let pin: DirectoryPin;
    let state: PinState = 'pinned';
    if (held === null) {
      pin = { ...presented, pinnedAt: now, witnessesPinnedAt: presented.witnesses === null ? null : now };
      state = 'first-use';
    } else {
      const witnessChanges = held.witnesses === null ? [] : witnessConfigChanges(held.witnesses, presented.witnesses);
      if (held.configuration !== presented.configuration) {
        throw new PinChanged('KT_BAD_RESPONSE', 'the directory configuration is not the one pinned in this browser (other log keys or parameters)', held, presented,
          ['log configuration (signature or VRF public key, or parameters)', ...witnessChanges]);
      }
      if (held.witnesses !== null) {
        try {
          checkPinnedWitnesses(held.witnesses, presented.witnesses);
        } catch (e) {
          throw new PinChanged('KW_CLIENT_WITNESSES_CHANGED', (e as Error).message, held, presented, witnessChanges);
        }
        pin = held;
      } else if (presented.witnesses !== null) {
        pin = { ...held, witnesses: presented.witnesses, witnessesPinnedAt: now };
        state = 'witnesses-first-use';
      } else {
        pin = held;
      }
    }
    // Checked against the pin, never against what was just presented.
    const dir = await Directory.connect(t, { pinned: pin.configuration, ...(pin.witnesses !== null ? { witnesses: pin.witnesses } : {}) });
    if (state !== 'pinned') await savePin(pin);
    return { dir, pin, state };
  })();
  // A failed connection is not kept: the next attempt asks again.
  cached.catch(() => { cached = null; });
  return cached;
}

/** The stable code of a directory, record, witness or service error, or null. */
export function errorCode(e: unknown): string | null {
  const c = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof c === 'string' && /^[A-Z][A-Z0-9_]+$/.test(c) ? c : null;
}

/** base64url (no padding) → bytes. */
export function fromB64u(s: string): Uint8Array {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}
