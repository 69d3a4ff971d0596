/**
 * The MFA operations of the SQLite store (mfa-types.ts), synchronous like
 * `sqlite-ops.ts`, which delegates to this class. Writes check their
 * preconditions first for a precise typed error; the migration's CHECKs and
 * triggers are the backstop. Compare-and-set updates make concurrent uses
 * of one TOTP step, one recovery code or one step-up a conflict.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { z } from 'zod';
import { StoreError } from './errors.js';
import {
  MfaFactorExpectSchema,
  MfaFactorPatchSchema,
  MfaFactorRowSchema,
  MfaLockoutRowSchema,
  NewMfaFactorSchema,
  NewMfaLockoutSchema,
  NewStepUpSchema,
  StepUpIdSchema,
  StepUpRowSchema,
  StepUpVerificationSchema,
} from './mfa-schema.js';
import type { MfaFactorExpect, MfaFactorPatch, MfaFactorRow, MfaLockoutRow, MfaStore, NewMfaFactor, NewMfaLockout, NewStepUp, StepUpRow, StepUpVerification } from './mfa-types.js';
import { IdentifierSchema, TimeSchema, parseInput, parseRow } from './schema.js';

/** `MfaStore` with every method synchronous. */
export type SyncMfaOps = { [K in keyof MfaStore]: MfaStore[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never };

export const FACTOR_COLUMNS = 'id, principal, kind, name, state, secret, data, last_step, counter, created, last_used';
export const STEP_UP_COLUMNS = 'id, principal, request, created, expires_at, verified_at, factor, consumed_at';

const blob = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const msOrNull = (d: Date | null | undefined): number | null => (d === null || d === undefined ? null : d.getTime());

/** Canonical comparison of stored JSON objects (key order as written by JSON.stringify of the same object). */
export const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class SqliteMfaOps implements SyncMfaOps {
  readonly #st: ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#st = prepare(db);
  }

  addMfaFactor(input: NewMfaFactor): MfaFactorRow {
    const f = parseInput(NewMfaFactorSchema, input, 'addMfaFactor');
    this.#requirePrincipal(f.principal);
    if (this.#st.getFactor.get(f.id) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${f.id} exists`);
    this.#st.insertFactor.run(f.id, f.principal, f.kind, f.name, f.state, f.secret === null ? null : blob(f.secret), JSON.stringify(f.data), f.counter, f.created.getTime());
    return this.#mustGet(this.getMfaFactor(f.id));
  }

  getMfaFactor(id: string): MfaFactorRow | null {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    return one(MfaFactorRowSchema, this.#st.getFactor.get(i), 'mfa_factors');
  }

  listMfaFactors(principal: string): MfaFactorRow[] {
    const p = parseInput(IdentifierSchema, principal, 'principal');
    return this.#st.listFactors.all(p).map((r) => parseRow(MfaFactorRowSchema, r, 'mfa_factors'));
  }

  updateMfaFactor(id: string, patch: MfaFactorPatch, expect?: MfaFactorExpect): MfaFactorRow {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    const p = parseInput(MfaFactorPatchSchema, patch, 'factor update');
    const e = expect === undefined ? undefined : parseInput(MfaFactorExpectSchema, expect, 'factor expectation');
    const cur = this.getMfaFactor(i);
    if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `MFA factor ${i} does not exist`);
    if (e && ((e.lastStep !== undefined && e.lastStep !== cur.lastStep) || (e.counter !== undefined && e.counter !== cur.counter) || (e.data !== undefined && !sameJson(e.data, cur.data)))) {
      throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${i} changed concurrently (already used)`);
    }
    const next = {
      state: p.state ?? cur.state,
      secret: p.secret ?? cur.secret,
      lastStep: p.lastStep ?? cur.lastStep,
      counter: p.counter ?? cur.counter,
      data: p.data ?? cur.data,
      lastUsed: p.lastUsed ?? cur.lastUsed,
    };
    if (cur.lastStep !== null && p.lastStep !== undefined && p.lastStep <= cur.lastStep) {
      throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${i}: the last accepted time step only moves forward`);
    }
    this.#st.updateFactor.run(next.state, next.secret === null ? null : blob(next.secret), next.lastStep, next.counter, JSON.stringify(next.data), msOrNull(next.lastUsed), i);
    return this.#mustGet(this.getMfaFactor(i));
  }

  removeMfaFactor(id: string): MfaFactorRow {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    const cur = this.getMfaFactor(i);
    if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `MFA factor ${i} does not exist`);
    this.#st.deleteFactor.run(i);
    return cur;
  }

  getMfaLockout(principal: string): MfaLockoutRow | null {
    const p = parseInput(IdentifierSchema, principal, 'principal');
    return one(MfaLockoutRowSchema, this.#st.getLockout.get(p), 'mfa_lockouts');
  }

  setMfaLockout(input: NewMfaLockout): MfaLockoutRow {
    const l = parseInput(NewMfaLockoutSchema, input, 'setMfaLockout');
    this.#requirePrincipal(l.principal);
    this.#st.upsertLockout.run(l.principal, l.failures, msOrNull(l.lockedUntil), l.updated.getTime());
    return this.#mustGet(this.getMfaLockout(l.principal));
  }

  createStepUp(input: NewStepUp): StepUpRow {
    const s = parseInput(NewStepUpSchema, input, 'createStepUp');
    this.#requirePrincipal(s.principal);
    if (this.#st.getStepUp.get(s.id) !== undefined) throw new StoreError('KW_STORE_CONFLICT', `step-up ${s.id} exists`);
    this.#st.insertStepUp.run(s.id, s.principal, s.request, s.created.getTime(), s.expiresAt.getTime());
    return this.#mustGet(this.getStepUp(s.id));
  }

  getStepUp(id: string): StepUpRow | null {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    return one(StepUpRowSchema, this.#st.getStepUp.get(i), 'step_ups');
  }

  markStepUpVerified(id: string, v: StepUpVerification): StepUpRow {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    const p = parseInput(StepUpVerificationSchema, v, 'step-up verification');
    const cur = this.getStepUp(i);
    if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `step-up ${i} does not exist`);
    if (this.#st.verifyStepUp.run(p.at.getTime(), p.factor, i).changes !== 1) throw new StoreError('KW_STORE_CONFLICT', `step-up ${i} was verified already`);
    return this.#mustGet(this.getStepUp(i));
  }

  consumeStepUp(id: string, at: Date): StepUpRow {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    const t = parseInput(TimeSchema, at, 'consumed at');
    const cur = this.getStepUp(i);
    if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `step-up ${i} does not exist`);
    if (this.#st.consumeStepUp.run(t.getTime(), i).changes !== 1) throw new StoreError('KW_STORE_CONFLICT', `step-up ${i} is not verified or was consumed already`);
    return this.#mustGet(this.getStepUp(i));
  }

  #requirePrincipal(id: string): void {
    if (this.#st.getPrincipal.get(id) === undefined) throw new StoreError('KW_STORE_NOT_FOUND', `principal ${id} does not exist`);
  }

  #mustGet<T>(row: T | null): T {
    if (row === null) throw new StoreError('KW_STORE_IO', 'the row just written cannot be read back');
    return row;
  }
}

function one<S extends z.ZodType>(schema: S, row: unknown, table: string): z.output<S> | null {
  return row === undefined ? null : parseRow(schema, row, table);
}

function prepare(db: Database) {
  const s = (sql: string): Statement<unknown[]> => db.prepare(sql);
  return {
    getPrincipal: s('SELECT id FROM principals WHERE id = ?'),
    insertFactor: s(`INSERT INTO mfa_factors (${FACTOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)`),
    getFactor: s(`SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE id = ?`),
    listFactors: s(`SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE principal = ? ORDER BY created, id`),
    updateFactor: s('UPDATE mfa_factors SET state = ?, secret = ?, last_step = ?, counter = ?, data = ?, last_used = ? WHERE id = ?'),
    deleteFactor: s('DELETE FROM mfa_factors WHERE id = ?'),
    getLockout: s('SELECT principal, failures, locked_until, updated FROM mfa_lockouts WHERE principal = ?'),
    upsertLockout: s(`INSERT INTO mfa_lockouts (principal, failures, locked_until, updated) VALUES (?, ?, ?, ?)
                      ON CONFLICT (principal) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated = excluded.updated`),
    insertStepUp: s(`INSERT INTO step_ups (${STEP_UP_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)`),
    getStepUp: s(`SELECT ${STEP_UP_COLUMNS} FROM step_ups WHERE id = ?`),
    verifyStepUp: s('UPDATE step_ups SET verified_at = ?, factor = ? WHERE id = ? AND verified_at IS NULL'),
    consumeStepUp: s('UPDATE step_ups SET consumed_at = ? WHERE id = ? AND verified_at IS NOT NULL AND consumed_at IS NULL'),
  };
}
