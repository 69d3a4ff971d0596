/**
 * The shared replay cache of signed (RFC 9421) data-plane requests (issue #4):
 * one row per (device key id, nonce) until the request's time window is over.
 * The keyholder's in-memory cache refuses a replay to the *same* node; this
 * table, written in the same store transaction as the request's audit event,
 * refuses it on *every* node sharing the database.
 *
 * `useNonce` is one statement on both backends — an insert that, on a
 * conflict, only takes over a row whose window has passed — so two nodes
 * racing with the same nonce cannot both win (PostgreSQL: the unique index
 * makes the second wait for the first's transaction, then see its row).
 * `purgeNonces` removes expired rows (the server calls it on a timer).
 */
import type { Database, Statement } from 'better-sqlite3';
import { z } from 'zod';
import { parseInput } from './schema.js';
import type { PgQuery, PgRunner } from './postgres-ops.js';

/** A nonce as the API records it. */
export const NewNonceSchema = z.object({
  /** The device key id (`keyid` of the signature). */
  keyId: z.string().min(1).max(255),
  /** The signature's `nonce` parameter. */
  nonce: z.string().min(1).max(255),
  /** After this time the signed request is refused anyway (its `created` + the allowed age + skew). */
  expiresAt: z.date(),
  /** The current time: a row whose expiresAt is at or before it no longer counts. */
  now: z.date(),
});
export type NewNonce = z.input<typeof NewNonceSchema>;

export interface NonceStore {
  /**
   * Records that a signed request with this (key id, nonce) was used: true
   * the first time, false if it was used before and its window is not over
   * (a replay). Inside `transaction(fn)` the row is written with the rest:
   * a rolled-back transaction leaves the nonce unused.
   */
  useNonce(input: NewNonce): Promise<boolean>;
  /**
   * Forgets a nonce recorded in the same transaction, for a request the
   * keyholder refused before it verified the signature (KW_POLICY_DENIED on a
   * node whose keyholder had not yet taken the newest signed policy), so the
   * API can run it once more after syncing. Never for a request that was acted on.
   */
  releaseNonce(input: { keyId: string; nonce: string }): Promise<void>;
  /** Removes nonces whose window ended at or before `now`; returns how many. */
  purgeNonces(now: Date): Promise<number>;
}

export const NONCE_OP_KINDS = {
  useNonce: 'write',
  releaseNonce: 'write',
  purgeNonces: 'write',
} as const satisfies Record<keyof NonceStore, 'read' | 'write'>;

const ms = (d: Date): number => d.getTime();
const NonceRefSchema = NewNonceSchema.pick({ keyId: true, nonce: true });
const NowSchema = z.date();

/** SQLite: same table, same statement shape (an upsert that takes over only an expired row). */
export class SqliteNonceOps {
  readonly #use: Statement;
  readonly #release: Statement;
  readonly #purge: Statement;

  constructor(db: Database) {
    this.#use = db.prepare(`INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE request_nonces.expires_at <= ?`);
    this.#release = db.prepare('DELETE FROM request_nonces WHERE key_id = ? AND nonce = ?');
    this.#purge = db.prepare('DELETE FROM request_nonces WHERE expires_at <= ?');
  }

  useNonce(input: NewNonce): boolean {
    const n = parseInput(NewNonceSchema, input, 'useNonce');
    return this.#use.run(n.keyId, n.nonce, ms(n.expiresAt), ms(n.now)).changes === 1;
  }

  releaseNonce(input: { keyId: string; nonce: string }): void {
    const n = parseInput(NonceRefSchema, input, 'releaseNonce');
    this.#release.run(n.keyId, n.nonce);
  }

  purgeNonces(now: Date): number {
    return this.#purge.run(ms(parseInput(NowSchema, now, 'purgeNonces'))).changes;
  }
}

/** PostgreSQL: `INSERT … ON CONFLICT DO UPDATE … WHERE expired RETURNING`, no row back = a replay. */
export class PgNonceOps {
  readonly #r: PgRunner;

  constructor(runner: PgRunner) {
    this.#r = runner;
  }

  useNonce(input: NewNonce): Promise<boolean> {
    const n = parseInput(NewNonceSchema, input, 'useNonce');
    return this.#r.write('useNonce', async (q: PgQuery) => {
      const res = await q(`INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE request_nonces.expires_at <= $4 RETURNING 1 AS used`,
      [n.keyId, n.nonce, ms(n.expiresAt), ms(n.now)]);
      return res.rowCount === 1;
    });
  }

  async releaseNonce(input: { keyId: string; nonce: string }): Promise<void> {
    const n = parseInput(NonceRefSchema, input, 'releaseNonce');
    await this.#r.write('releaseNonce', (q: PgQuery) => q('DELETE FROM request_nonces WHERE key_id = $1 AND nonce = $2', [n.keyId, n.nonce]));
  }

  purgeNonces(now: Date): Promise<number> {
    const t = ms(parseInput(NowSchema, now, 'purgeNonces'));
    return this.#r.write('purgeNonces', async (q: PgQuery) => (await q('DELETE FROM request_nonces WHERE expires_at <= $1', [t])).rowCount);
  }
}
