/**
 * The MFA operations of the PostgreSQL store (mfa-types.ts), over the same
 * {@link PgRunner} as `postgres-ops.ts` (which delegates to this class), with
 * the same checks in the same order as `sqlite-mfa.ts`. Concurrency: each
 * read-then-write locks the row it read (`FOR UPDATE`), and the updates that
 * matter are compare-and-set in SQL too, so two nodes using one TOTP step,
 * one recovery code or one step-up cannot both succeed.
 */
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
import type { PgQuery, PgRunner } from './postgres-ops.js';
import { IdentifierSchema, TimeSchema, parseInput, parseRow } from './schema.js';
import { FACTOR_COLUMNS, STEP_UP_COLUMNS, sameJson } from './sqlite-mfa.js';

const blob = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const msOrNull = (d: Date | null | undefined): number | null => (d === null || d === undefined ? null : d.getTime());

/** BIGINT columns come back as strings from `pg`; the row schemas want numbers. */
function numbers(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'string' && /^(created|updated|last_used|last_step|counter|locked_until|expires_at|verified_at|consumed_at)$/.test(k) ? Number(v) : v;
  return out;
}

async function one<S extends z.ZodType>(q: PgQuery, schema: S, sql: string, values: unknown[], table: string): Promise<z.output<S> | null> {
  const r = await q(sql, values);
  return r.rowCount === 0 ? null : parseRow(schema, numbers(r.rows[0]!), table);
}

const SQL = {
  getPrincipal: 'SELECT id FROM principals WHERE id = $1',
  insertFactor: `INSERT INTO mfa_factors (${FACTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, NULL)`,
  getFactor: `SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE id = $1`,
  lockFactor: `SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE id = $1 FOR UPDATE`,
  listFactors: `SELECT ${FACTOR_COLUMNS} FROM mfa_factors WHERE principal = $1 ORDER BY created, id COLLATE "C"`,
  updateFactor: 'UPDATE mfa_factors SET state = $1, secret = $2, last_step = $3, counter = $4, data = $5, last_used = $6 WHERE id = $7',
  deleteFactor: 'DELETE FROM mfa_factors WHERE id = $1',
  getLockout: 'SELECT principal, failures, locked_until, updated FROM mfa_lockouts WHERE principal = $1',
  upsertLockout: `INSERT INTO mfa_lockouts (principal, failures, locked_until, updated) VALUES ($1, $2, $3, $4)
                  ON CONFLICT (principal) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated = excluded.updated`,
  insertStepUp: `INSERT INTO step_ups (${STEP_UP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL) ON CONFLICT (id) DO NOTHING`,
  getStepUp: `SELECT ${STEP_UP_COLUMNS} FROM step_ups WHERE id = $1`,
  verifyStepUp: 'UPDATE step_ups SET verified_at = $1, factor = $2 WHERE id = $3 AND verified_at IS NULL',
  consumeStepUp: 'UPDATE step_ups SET consumed_at = $1 WHERE id = $2 AND verified_at IS NOT NULL AND consumed_at IS NULL',
} as const;

export class PgMfaOps implements MfaStore {
  readonly #r: PgRunner;

  constructor(runner: PgRunner) {
    this.#r = runner;
  }

  addMfaFactor(input: NewMfaFactor): Promise<MfaFactorRow> {
    const f = parseInput(NewMfaFactorSchema, input, 'addMfaFactor');
    return this.#r.write('addMfaFactor', async (q) => {
      await requirePrincipal(q, f.principal);
      if ((await q(SQL.getFactor, [f.id])).rowCount !== 0) throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${f.id} exists`);
      await q(SQL.insertFactor, [f.id, f.principal, f.kind, f.name, f.state, f.secret === null ? null : blob(f.secret), JSON.stringify(f.data), f.counter, f.created.getTime()]);
      return mustGet(await one(q, MfaFactorRowSchema, SQL.getFactor, [f.id], 'mfa_factors'));
    });
  }

  getMfaFactor(id: string): Promise<MfaFactorRow | null> {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    return this.#r.read('getMfaFactor', (q) => one(q, MfaFactorRowSchema, SQL.getFactor, [i], 'mfa_factors'));
  }

  listMfaFactors(principal: string): Promise<MfaFactorRow[]> {
    const p = parseInput(IdentifierSchema, principal, 'principal');
    return this.#r.read('listMfaFactors', async (q) => (await q(SQL.listFactors, [p])).rows.map((r) => parseRow(MfaFactorRowSchema, numbers(r), 'mfa_factors')));
  }

  updateMfaFactor(id: string, patch: MfaFactorPatch, expect?: MfaFactorExpect): Promise<MfaFactorRow> {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    const p = parseInput(MfaFactorPatchSchema, patch, 'factor update');
    const e = expect === undefined ? undefined : parseInput(MfaFactorExpectSchema, expect, 'factor expectation');
    return this.#r.write('updateMfaFactor', async (q) => {
      const cur = await one(q, MfaFactorRowSchema, SQL.lockFactor, [i], 'mfa_factors');
      if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `MFA factor ${i} does not exist`);
      if (e && ((e.lastStep !== undefined && e.lastStep !== cur.lastStep) || (e.counter !== undefined && e.counter !== cur.counter) || (e.data !== undefined && !sameJson(e.data, cur.data)))) {
        throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${i} changed concurrently (already used)`);
      }
      if (cur.lastStep !== null && p.lastStep !== undefined && p.lastStep <= cur.lastStep) {
        throw new StoreError('KW_STORE_CONFLICT', `MFA factor ${i}: the last accepted time step only moves forward`);
      }
      const secret = p.secret ?? cur.secret;
      await q(SQL.updateFactor, [p.state ?? cur.state, secret === null ? null : blob(secret), p.lastStep ?? cur.lastStep, p.counter ?? cur.counter, JSON.stringify(p.data ?? cur.data), msOrNull(p.lastUsed ?? cur.lastUsed), i]);
      return mustGet(await one(q, MfaFactorRowSchema, SQL.getFactor, [i], 'mfa_factors'));
    });
  }

  removeMfaFactor(id: string): Promise<MfaFactorRow> {
    const i = parseInput(IdentifierSchema, id, 'factor id');
    return this.#r.write('removeMfaFactor', async (q) => {
      const cur = await one(q, MfaFactorRowSchema, SQL.lockFactor, [i], 'mfa_factors');
      if (cur === null) throw new StoreError('KW_STORE_NOT_FOUND', `MFA factor ${i} does not exist`);
      await q(SQL.deleteFactor, [i]);
      return cur;
    });
  }

  getMfaLockout(principal: string): Promise<MfaLockoutRow | null> {
    const p = parseInput(IdentifierSchema, principal, 'principal');
    return this.#r.read('getMfaLockout', (q) => one(q, MfaLockoutRowSchema, SQL.getLockout, [p], 'mfa_lockouts'));
  }

  setMfaLockout(input: NewMfaLockout): Promise<MfaLockoutRow> {
    const l = parseInput(NewMfaLockoutSchema, input, 'setMfaLockout');
    return this.#r.write('setMfaLockout', async (q) => {
      await requirePrincipal(q, l.principal);
      await q(SQL.upsertLockout, [l.principal, l.failures, msOrNull(l.lockedUntil), l.updated.getTime()]);
      return mustGet(await one(q, MfaLockoutRowSchema, SQL.getLockout, [l.principal], 'mfa_lockouts'));
    });
  }

  createStepUp(input: NewStepUp): Promise<StepUpRow> {
    const s = parseInput(NewStepUpSchema, input, 'createStepUp');
    return this.#r.write('createStepUp', async (q) => {
      await requirePrincipal(q, s.principal);
      if ((await q(SQL.insertStepUp, [s.id, s.principal, s.request, s.created.getTime(), s.expiresAt.getTime()])).rowCount !== 1) {
        throw new StoreError('KW_STORE_CONFLICT', `step-up ${s.id} exists`);
      }
      return mustGet(await one(q, StepUpRowSchema, SQL.getStepUp, [s.id], 'step_ups'));
    });
  }

  getStepUp(id: string): Promise<StepUpRow | null> {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    return this.#r.read('getStepUp', (q) => one(q, StepUpRowSchema, SQL.getStepUp, [i], 'step_ups'));
  }

  markStepUpVerified(id: string, v: StepUpVerification): Promise<StepUpRow> {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    const p = parseInput(StepUpVerificationSchema, v, 'step-up verification');
    return this.#r.write('markStepUpVerified', async (q) => {
      if ((await q(SQL.getStepUp, [i])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `step-up ${i} does not exist`);
      if ((await q(SQL.verifyStepUp, [p.at.getTime(), p.factor, i])).rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `step-up ${i} was verified already`);
      return mustGet(await one(q, StepUpRowSchema, SQL.getStepUp, [i], 'step_ups'));
    });
  }

  consumeStepUp(id: string, at: Date): Promise<StepUpRow> {
    const i = parseInput(StepUpIdSchema, id, 'step-up id');
    const t = parseInput(TimeSchema, at, 'consumed at');
    return this.#r.write('consumeStepUp', async (q) => {
      if ((await q(SQL.getStepUp, [i])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `step-up ${i} does not exist`);
      if ((await q(SQL.consumeStepUp, [t.getTime(), i])).rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `step-up ${i} is not verified or was consumed already`);
      return mustGet(await one(q, StepUpRowSchema, SQL.getStepUp, [i], 'step_ups'));
    });
  }
}

async function requirePrincipal(q: PgQuery, id: string): Promise<void> {
  if ((await q(SQL.getPrincipal, [id])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `principal ${id} does not exist`);
}

function mustGet<T>(row: T | null): T {
  if (row === null) throw new StoreError('KW_STORE_IO', 'the row just written cannot be read back');
  return row;
}
