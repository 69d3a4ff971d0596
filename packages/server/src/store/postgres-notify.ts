/**
 * Cross-node invalidation for the PostgreSQL store: one dedicated connection
 * per node LISTENs on channel `keyward_changes`, where the schema's triggers
 * (migration 3) announce every committed change to key versions, keys,
 * tokens, signing keys, principals and policies. PostgreSQL delivers a
 * notification to every listening session at commit, in commit order, so a
 * node learns of a change made on another node within milliseconds.
 *
 * A notification can be missed only while the listening connection is down.
 * The feed then tells its listeners `{ kind: 'reset' }` — once when the
 * connection is lost and once when it is back — and whoever caches rows must
 * drop them all. Caches must in any case keep a bounded TTL (at most
 * {@link MAX_CACHE_TTL_MS}) as the backstop for a notification lost in a way
 * the feed cannot see.
 *
 * Payloads are checked with zod; one that fails (a foreign writer on the
 * channel) is reported as a reset, which is always safe.
 */
import pg from 'pg';
import { z } from 'zod';

/** The notification channel. */
export const CHANGE_CHANNEL = 'keyward_changes';
/** The longest a node may use a cached authorisation row (token, policy, key version) without re-reading it. */
export const MAX_CACHE_TTL_MS = 1000;

const Text = z.string().min(1).max(255);
const ChangeSchema = z.discriminatedUnion('table', [
  z.object({ table: z.literal('key_versions'), ns: Text, key: Text, version: z.number().int().min(1), state: Text }),
  z.object({ table: z.literal('keys'), ns: Text, key: Text }),
  z.object({ table: z.literal('tokens'), id: Text, principal: Text }),
  z.object({ table: z.literal('signing_keys'), id: Text, principal: Text }),
  z.object({ table: z.literal('principals'), id: Text, ns: Text }),
  z.object({ table: z.literal('policies'), id: Text, ns: Text, version: z.number().int().min(1) }),
]);

/** One committed change, as announced (names only, never secret columns). */
export type StoreChange = z.infer<typeof ChangeSchema>;

/** What a listener receives. */
export type ChangeEvent = { readonly kind: 'change'; readonly change: StoreChange } | { readonly kind: 'reset'; readonly reason: string };
export type ChangeListener = (event: ChangeEvent) => void;

/**
 * Parses a notification payload: the change, `'other-schema'` when it is
 * another deployment's (same database, other PostgreSQL schema), or null if
 * it is not one of ours.
 */
export function parseChange(payload: string | undefined, schema: string): StoreChange | 'other-schema' | null {
  if (payload === undefined) return null;
  try {
    const raw = JSON.parse(payload) as unknown;
    if (typeof raw === 'object' && raw !== null && 'schema' in raw && raw.schema !== schema) return 'other-schema';
    const r = ChangeSchema.safeParse(raw);
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** The listening connection of one node (started by the first subscriber). */
export class PgChangeFeed {
  readonly #config: pg.ClientConfig;
  readonly #schema: string;
  readonly #onError: (what: string, e: unknown) => void;
  readonly #listeners = new Set<ChangeListener>();
  #client: pg.Client | null = null;
  #connecting: Promise<void> | null = null;
  #closed = false;
  #retryMs = 100;
  #timer: NodeJS.Timeout | null = null;

  constructor(config: pg.ClientConfig, schema: string, onError: (what: string, e: unknown) => void) {
    this.#config = { ...config, application_name: 'keyward-listen' };
    this.#schema = schema;
    this.#onError = onError;
  }

  /** Adds a listener; resolves once the node is listening. */
  async subscribe(listener: ChangeListener): Promise<() => void> {
    this.#listeners.add(listener);
    try {
      await this.#ensure();
    } catch (e) {
      this.#listeners.delete(listener);
      throw e;
    }
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #emit(event: ChangeEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch (e) {
        this.#onError('change listener', e);
      }
    }
  }

  #ensure(): Promise<void> {
    if (this.#client) return Promise.resolve();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    let lost = false;
    const onLost = (e?: unknown): void => {
      if (lost) return;
      lost = true;
      if (this.#client === client) this.#client = null;
      if (this.#closed) return;
      if (e !== undefined) this.#onError('change feed', e);
      this.#emit({ kind: 'reset', reason: 'the listening connection was lost' });
      this.#scheduleReconnect();
    };
    client.on('error', (e) => onLost(e));
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      if (n.channel !== CHANGE_CHANNEL) return;
      const change = parseChange(n.payload, this.#schema);
      if (change === 'other-schema') return;
      this.#emit(change === null ? { kind: 'reset', reason: 'an unrecognised notification' } : { kind: 'change', change });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      lost = true;
      await client.end().catch(() => undefined);
      throw e;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#retryMs = 100;
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer || this.#listeners.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ensure().then(
        () => this.#emit({ kind: 'reset', reason: 'listening again; changes made meanwhile were not seen' }),
        (e: unknown) => {
          this.#onError('change feed reconnect', e);
          this.#retryMs = Math.min(this.#retryMs * 2, 5000);
          this.#scheduleReconnect();
        },
      );
    }, this.#retryMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
    await this.#connecting?.catch(() => undefined);
    const c = this.#client;
    this.#client = null;
    if (c) await c.end().catch(() => undefined);
  }
}
