/**
 * Persistence of the public-key directory (issue #6), on both backends, in
 * the shape of `nonces.ts`: one schema, one operation set, a SQLite class and
 * a PostgreSQL class giving the same answers and the same typed errors.
 *
 * Two groups of tables (migration 7, in migrations.ts and postgres-migrations.ts):
 * - the KEYTRANS log (`kt_log`, `kt_log_nodes`, `kt_prefix_nodes`,
 *   `kt_versions`): append-only, written only by {@link DirectoryRowStore.ktAppend},
 *   one call per log entry, which refuses a position that is not the current
 *   size (`KW_STORE_CONFLICT`) — two nodes cannot both extend the log;
 * - the directory's entities (`dir_entities`: identities and groups, their
 *   current state as canonical JSON with a sequence number written by
 *   compare-and-set) and one-time enrollment tokens (`dir_enroll_tokens`,
 *   SHA-256 hashes only, used at most once).
 *
 * No business rule lives here: what a state may contain, who may change it
 * and what enters the log are `server/directory`'s.
 */
import type { Database, Statement } from 'better-sqlite3';
import { z } from 'zod';
import { StoreError } from './errors.js';
import { BytesSchema, IdentifierSchema, JsonObjectTextSchema, TimeSchema, TokenHashSchema, parseInput, parseRow } from './schema.js';
import type { PgQuery, PgRunner } from './postgres-ops.js';

// --- rows and inputs ---------------------------------------------------------------------------

const DbBytes = BytesSchema.transform((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
const Pos = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Label = BytesSchema.refine((b) => b.length >= 1 && b.length <= 255, 'a label is 1 to 255 bytes');
const Value = BytesSchema.refine((b) => b.length <= 1024 * 1024, 'a value is at most 1 MiB');
const fixed = (n: number) => BytesSchema.refine((b) => b.length === n, `must be ${n} bytes`);

/** A directory entity name: `user:NAME`, `service:NAME` or `group:NAME`. */
export const EntityNameSchema = z.string().regex(/^(user|service|group):[a-z0-9][a-z0-9._-]{0,62}$/, 'must be user:NAME, service:NAME or group:NAME (lower-case letters, digits, . _ -)');
export const ENTITY_KINDS = ['user', 'service', 'group'] as const;

/** One label version of the KEYTRANS log (the VRF secret is never stored). */
export const KtVersionRecordSchema = z.object({
  value: Value,
  opening: fixed(16),
  vrfOutput: fixed(32),
  vrfProof: fixed(80),
  commitment: fixed(32),
  position: Pos,
});
export type KtVersionRecord = z.output<typeof KtVersionRecordSchema>;

/** Everything one new log entry writes (the directory's `AppendBatch`, prefix nodes encoded). */
export const KtAppendSchema = z.object({
  position: Pos,
  timestamp: Pos,
  prefixRoot: fixed(32),
  logNodes: z.array(z.object({ start: Pos, len: z.number().int().min(1), value: fixed(32) })).max(64),
  prefixNodes: z.array(z.object({ value: fixed(32), node: BytesSchema.refine((b) => b.length === 65, 'an encoded prefix node is 65 bytes') })).max(255 * 260),
  versions: z.array(z.object({ label: Label, version: z.number().int().min(0).max(0xffffffff), record: KtVersionRecordSchema })).max(255),
});
export type KtAppend = z.input<typeof KtAppendSchema>;

const KtEntryRow = z.object({ timestamp: Pos, prefix_root: DbBytes }).transform((r) => ({ timestamp: r.timestamp, prefixRoot: r.prefix_root }));
const KtVersionRow = z
  .object({ value: DbBytes, opening: DbBytes, vrf_output: DbBytes, vrf_proof: DbBytes, commitment: DbBytes, position: Pos })
  .transform((r) => ({ value: r.value, opening: r.opening, vrfOutput: r.vrf_output, vrfProof: r.vrf_proof, commitment: r.commitment, position: r.position }));
const BytesRow = z.object({ value: DbBytes }).transform((r) => r.value);
const NodeRow = z.object({ node: DbBytes }).transform((r) => r.node);
const CountRow = z.object({ n: z.coerce.number().int().min(0) }).transform((r) => r.n);

export const DirEntityRowSchema = z
  .object({
    name: EntityNameSchema,
    kind: z.enum(ENTITY_KINDS),
    principal: IdentifierSchema.nullable(),
    state: JsonObjectTextSchema,
    seq: z.number().int().min(1),
    updated: Pos,
  })
  .transform((r) => ({ name: r.name, kind: r.kind, principal: r.principal, state: JSON.parse(r.state) as Record<string, unknown>, seq: r.seq, updated: new Date(r.updated) }));
export type DirEntityRow = z.output<typeof DirEntityRowSchema>;

/** A new state of an entity: `seq` 1 creates it, `n + 1` replaces `n` (compare-and-set). */
export const PutDirEntitySchema = z.object({
  name: EntityNameSchema,
  principal: IdentifierSchema.nullable().default(null),
  state: z.record(z.string(), z.json()),
  seq: z.number().int().min(1),
  updated: TimeSchema,
});
export type PutDirEntity = z.input<typeof PutDirEntitySchema>;

export const DirEnrollTokenRowSchema = z
  .object({
    id: IdentifierSchema,
    entity: EntityNameSchema,
    token_hash: TokenHashSchema,
    created_by: IdentifierSchema,
    created: Pos,
    expires_at: Pos,
    used_at: Pos.nullable(),
  })
  .transform((r) => ({
    id: r.id,
    entity: r.entity,
    tokenHash: r.token_hash,
    createdBy: r.created_by,
    created: new Date(r.created),
    expiresAt: new Date(r.expires_at),
    usedAt: r.used_at === null ? null : new Date(r.used_at),
  }));
export type DirEnrollTokenRow = z.output<typeof DirEnrollTokenRowSchema>;

export const NewDirEnrollTokenSchema = z.object({
  id: IdentifierSchema,
  entity: EntityNameSchema,
  tokenHash: TokenHashSchema,
  createdBy: IdentifierSchema,
  created: TimeSchema,
  expiresAt: TimeSchema,
});
export type NewDirEnrollToken = z.input<typeof NewDirEnrollTokenSchema>;

/** The directory's persistence (part of `StoreOps`). */
export interface DirectoryRowStore {
  /**
   * Inside `transaction(fn)`: makes this transaction the only directory writer, on every node, until
   * it ends (PostgreSQL: a transaction-scoped advisory lock; SQLite: the transaction already holds
   * the write lock). Take it before reading what a change depends on.
   */
  ktLock(): Promise<void>;
  /** Number of KEYTRANS log entries. */
  ktTreeSize(): Promise<number>;
  ktLogEntry(position: number): Promise<{ timestamp: number; prefixRoot: Uint8Array } | null>;
  ktLogNode(start: number, len: number): Promise<Uint8Array | null>;
  /** An encoded prefix node (65 bytes) by its value. */
  ktPrefixNode(value: Uint8Array): Promise<Uint8Array | null>;
  ktVersionCount(label: Uint8Array): Promise<number>;
  ktLabelVersion(label: Uint8Array, version: number): Promise<KtVersionRecord | null>;
  /**
   * Writes one log entry and everything it adds, atomically. `KW_STORE_CONFLICT` (nothing
   * written) if `position` is not the current size or a label version is not the label's next one.
   */
  ktAppend(input: KtAppend): Promise<void>;
  getDirEntity(name: string): Promise<DirEntityRow | null>;
  /** The identity bound to a key-service principal, or null. */
  getDirEntityByPrincipal(principal: string): Promise<DirEntityRow | null>;
  /** Entities of one kind (or all), by name. */
  listDirEntities(kind?: 'user' | 'service' | 'group'): Promise<DirEntityRow[]>;
  /**
   * Creates (`seq` 1) or replaces (`seq` = current + 1) an entity's state. `KW_STORE_CONFLICT`
   * when the sequence is not the next one (a concurrent change won) or the principal is bound to
   * another identity; a principal binding, once set, never changes.
   */
  putDirEntity(input: PutDirEntity): Promise<DirEntityRow>;
  /** `KW_STORE_CONFLICT` if the id or hash exists. */
  createDirEnrollToken(input: NewDirEnrollToken): Promise<DirEnrollTokenRow>;
  getDirEnrollTokenByHash(tokenHash: string): Promise<DirEnrollTokenRow | null>;
  /** Marks a token used; `KW_STORE_CONFLICT` if it was used already (only one use wins). */
  useDirEnrollToken(id: string, at: Date): Promise<DirEnrollTokenRow>;
}

export const DIRECTORY_OP_KINDS = {
  ktLock: 'write',
  ktTreeSize: 'read',
  ktLogEntry: 'read',
  ktLogNode: 'read',
  ktPrefixNode: 'read',
  ktVersionCount: 'read',
  ktLabelVersion: 'read',
  ktAppend: 'write',
  getDirEntity: 'read',
  getDirEntityByPrincipal: 'read',
  listDirEntities: 'read',
  putDirEntity: 'write',
  createDirEnrollToken: 'write',
  getDirEnrollTokenByHash: 'read',
  useDirEnrollToken: 'write',
} as const satisfies Record<keyof DirectoryRowStore, 'read' | 'write'>;

/** `DirectoryRowStore` with every method synchronous (SQLite). */
export type SyncDirectoryOps = { [K in keyof DirectoryRowStore]: DirectoryRowStore[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never };

// --- shared checks ---------------------------------------------------------------------------------

const blob = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const kindOf = (name: string): 'user' | 'service' | 'group' => name.slice(0, name.indexOf(':')) as 'user' | 'service' | 'group';
const PosInput = Pos;
const LenInput = z.number().int().min(1).max(2 ** 52);

/** Checks a batch against the current size and version counts (same order on both backends). */
function checkBatch(b: z.output<typeof KtAppendSchema>, size: number, count: (label: Uint8Array) => number): void {
  if (b.position !== size) throw new StoreError('KW_STORE_CONFLICT', `directory append at ${b.position} but the log has ${size} entries`);
  const next = new Map<string, number>();
  for (const v of b.versions) {
    const k = blob(v.label).toString('hex');
    const want = next.get(k) ?? count(v.label);
    if (v.version !== want) throw new StoreError('KW_STORE_CONFLICT', `label version ${v.version} is not the next one (${want})`);
    if (v.record.position !== b.position) throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'a label version must record the position of the entry that adds it');
    next.set(k, want + 1);
  }
}

function checkPut(p: z.output<typeof PutDirEntitySchema>, current: DirEntityRow | null): void {
  if (kindOf(p.name) === 'group' && p.principal !== null) throw new StoreError('KW_STORE_INVALID_ARGUMENT', 'a group is not bound to a principal');
  if (current === null) {
    if (p.seq !== 1) throw new StoreError(p.seq === 1 ? 'KW_STORE_CONFLICT' : 'KW_STORE_NOT_FOUND', `${p.name} does not exist`);
    return;
  }
  if (p.seq !== current.seq + 1) throw new StoreError('KW_STORE_CONFLICT', `${p.name} is at ${current.seq}; ${p.seq} is not the next state`);
  if (current.principal !== null && p.principal !== current.principal) {
    throw new StoreError('KW_STORE_CONFLICT', `${p.name} is bound to another principal; a binding never changes`);
  }
}

const ENTITY_COLUMNS = 'name, kind, principal, state, seq, updated';
const TOKEN_COLUMNS = 'id, entity, token_hash, created_by, created, expires_at, used_at';

// --- SQLite -----------------------------------------------------------------------------------------

export class SqliteDirectoryOps implements SyncDirectoryOps {
  readonly #db: Database;
  #prepared: Record<string, Statement> | undefined;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Prepared on first use: the tables exist only from migration 7 on. */
  get #st(): Record<string, Statement> {
    if (this.#prepared) return this.#prepared;
    const p = (sql: string): Statement => this.#db.prepare(sql);
    this.#prepared = {
      size: p('SELECT count(*) AS n FROM kt_log'),
      entry: p('SELECT timestamp, prefix_root FROM kt_log WHERE position = ?'),
      node: p('SELECT value FROM kt_log_nodes WHERE start = ? AND len = ?'),
      prefix: p('SELECT node FROM kt_prefix_nodes WHERE value = ?'),
      count: p('SELECT count(*) AS n FROM kt_versions WHERE label = ?'),
      version: p('SELECT value, opening, vrf_output, vrf_proof, commitment, position FROM kt_versions WHERE label = ? AND version = ?'),
      insEntry: p('INSERT INTO kt_log (position, timestamp, prefix_root) VALUES (?, ?, ?)'),
      insNode: p('INSERT INTO kt_log_nodes (start, len, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      insPrefix: p('INSERT INTO kt_prefix_nodes (value, node) VALUES (?, ?) ON CONFLICT DO NOTHING'),
      insVersion: p('INSERT INTO kt_versions (label, version, value, opening, vrf_output, vrf_proof, commitment, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      entity: p(`SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE name = ?`),
      entityByPrincipal: p(`SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE principal = ?`),
      entities: p(`SELECT ${ENTITY_COLUMNS} FROM dir_entities ORDER BY name`),
      entitiesOfKind: p(`SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE kind = ? ORDER BY name`),
      insEntity: p(`INSERT INTO dir_entities (${ENTITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`),
      updEntity: p('UPDATE dir_entities SET principal = ?, state = ?, seq = ?, updated = ? WHERE name = ? AND seq = ?'),
      token: p(`SELECT ${TOKEN_COLUMNS} FROM dir_enroll_tokens WHERE id = ?`),
      tokenByHash: p(`SELECT ${TOKEN_COLUMNS} FROM dir_enroll_tokens WHERE token_hash = ?`),
      insToken: p(`INSERT INTO dir_enroll_tokens (${TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)`),
      useToken: p('UPDATE dir_enroll_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL'),
    };
    return this.#prepared;
  }

  ktLock(): void {
    // The enclosing transaction began with BEGIN IMMEDIATE: it is the only writer already.
  }

  ktTreeSize(): number {
    return parseRow(CountRow, this.#st.size!.get(), 'kt_log');
  }

  ktLogEntry(position: number): { timestamp: number; prefixRoot: Uint8Array } | null {
    const r = this.#st.entry!.get(parseInput(PosInput, position, 'position'));
    return r === undefined ? null : parseRow(KtEntryRow, r, 'kt_log');
  }

  ktLogNode(start: number, len: number): Uint8Array | null {
    const r = this.#st.node!.get(parseInput(PosInput, start, 'start'), parseInput(LenInput, len, 'len'));
    return r === undefined ? null : parseRow(BytesRow, r, 'kt_log_nodes');
  }

  ktPrefixNode(value: Uint8Array): Uint8Array | null {
    const r = this.#st.prefix!.get(blob(parseInput(fixed(32), value, 'value')));
    return r === undefined ? null : parseRow(NodeRow, r, 'kt_prefix_nodes');
  }

  ktVersionCount(label: Uint8Array): number {
    return parseRow(CountRow, this.#st.count!.get(blob(parseInput(Label, label, 'label'))), 'kt_versions');
  }

  ktLabelVersion(label: Uint8Array, version: number): KtVersionRecord | null {
    const r = this.#st.version!.get(blob(parseInput(Label, label, 'label')), parseInput(PosInput, version, 'version'));
    return r === undefined ? null : parseRow(KtVersionRow, r, 'kt_versions');
  }

  ktAppend(input: KtAppend): void {
    const b = parseInput(KtAppendSchema, input, 'ktAppend');
    checkBatch(b, this.ktTreeSize(), (l) => this.ktVersionCount(l));
    this.#st.insEntry!.run(b.position, b.timestamp, blob(b.prefixRoot));
    for (const n of b.logNodes) this.#st.insNode!.run(n.start, n.len, blob(n.value));
    for (const n of b.prefixNodes) this.#st.insPrefix!.run(blob(n.value), blob(n.node));
    for (const v of b.versions) {
      const r = v.record;
      this.#st.insVersion!.run(blob(v.label), v.version, blob(r.value), blob(r.opening), blob(r.vrfOutput), blob(r.vrfProof), blob(r.commitment), r.position);
    }
  }

  getDirEntity(name: string): DirEntityRow | null {
    const r = this.#st.entity!.get(parseInput(EntityNameSchema, name, 'name'));
    return r === undefined ? null : parseRow(DirEntityRowSchema, r, 'dir_entities');
  }

  getDirEntityByPrincipal(principal: string): DirEntityRow | null {
    const r = this.#st.entityByPrincipal!.get(parseInput(IdentifierSchema, principal, 'principal'));
    return r === undefined ? null : parseRow(DirEntityRowSchema, r, 'dir_entities');
  }

  listDirEntities(kind?: 'user' | 'service' | 'group'): DirEntityRow[] {
    const rows = kind === undefined ? this.#st.entities!.all() : this.#st.entitiesOfKind!.all(parseInput(z.enum(ENTITY_KINDS), kind, 'kind'));
    return rows.map((r) => parseRow(DirEntityRowSchema, r, 'dir_entities'));
  }

  putDirEntity(input: PutDirEntity): DirEntityRow {
    const p = parseInput(PutDirEntitySchema, input, 'putDirEntity');
    const current = this.getDirEntity(p.name);
    checkPut(p, current);
    if (p.principal !== null) {
      const other = this.getDirEntityByPrincipal(p.principal);
      if (other !== null && other.name !== p.name) throw new StoreError('KW_STORE_CONFLICT', `principal ${p.principal} is bound to ${other.name}`);
    }
    const state = JSON.stringify(p.state);
    if (current === null) this.#st.insEntity!.run(p.name, kindOf(p.name), p.principal, state, p.seq, p.updated.getTime());
    else if (this.#st.updEntity!.run(p.principal, state, p.seq, p.updated.getTime(), p.name, p.seq - 1).changes !== 1) {
      throw new StoreError('KW_STORE_CONFLICT', `${p.name} changed concurrently`);
    }
    return this.getDirEntity(p.name)!;
  }

  createDirEnrollToken(input: NewDirEnrollToken): DirEnrollTokenRow {
    const t = parseInput(NewDirEnrollTokenSchema, input, 'createDirEnrollToken');
    if (this.getDirEntity(t.entity) === null) throw new StoreError('KW_STORE_NOT_FOUND', `${t.entity} does not exist`);
    if (this.#st.token!.get(t.id) !== undefined || this.#st.tokenByHash!.get(t.tokenHash) !== undefined) {
      throw new StoreError('KW_STORE_CONFLICT', `enrollment token ${t.id} exists`);
    }
    this.#st.insToken!.run(t.id, t.entity, t.tokenHash, t.createdBy, t.created.getTime(), t.expiresAt.getTime());
    return parseRow(DirEnrollTokenRowSchema, this.#st.token!.get(t.id), 'dir_enroll_tokens');
  }

  getDirEnrollTokenByHash(tokenHash: string): DirEnrollTokenRow | null {
    const r = this.#st.tokenByHash!.get(parseInput(TokenHashSchema, tokenHash, 'token hash'));
    return r === undefined ? null : parseRow(DirEnrollTokenRowSchema, r, 'dir_enroll_tokens');
  }

  useDirEnrollToken(id: string, at: Date): DirEnrollTokenRow {
    const i = parseInput(IdentifierSchema, id, 'token id');
    const t = parseInput(TimeSchema, at, 'at');
    if (this.#st.token!.get(i) === undefined) throw new StoreError('KW_STORE_NOT_FOUND', `enrollment token ${i} does not exist`);
    if (this.#st.useToken!.run(t.getTime(), i).changes !== 1) throw new StoreError('KW_STORE_CONFLICT', 'the enrollment token was used already');
    return parseRow(DirEnrollTokenRowSchema, this.#st.token!.get(i), 'dir_enroll_tokens');
  }
}

// --- PostgreSQL ---------------------------------------------------------------------------------------

async function pgOne<S extends z.ZodType>(q: PgQuery, schema: S, sql: string, values: readonly unknown[], table: string): Promise<z.output<S> | null> {
  const res = await q(sql, values);
  return res.rowCount === 0 ? null : parseRow(schema, res.rows[0], table);
}

export class PgDirectoryOps implements DirectoryRowStore {
  readonly #r: PgRunner;

  constructor(runner: PgRunner) {
    this.#r = runner;
  }

  ktLock(): Promise<void> {
    return this.#r.write('ktLock', async (q) => {
      await q('SELECT pg_advisory_xact_lock(7, 1)');
    });
  }

  ktTreeSize(): Promise<number> {
    return this.#r.read('ktTreeSize', async (q) => parseRow(CountRow, (await q('SELECT count(*) AS n FROM kt_log')).rows[0], 'kt_log'));
  }

  ktLogEntry(position: number): Promise<{ timestamp: number; prefixRoot: Uint8Array } | null> {
    const p = parseInput(PosInput, position, 'position');
    return this.#r.read('ktLogEntry', (q) => pgOne(q, KtEntryRow, 'SELECT timestamp, prefix_root FROM kt_log WHERE position = $1', [p], 'kt_log'));
  }

  ktLogNode(start: number, len: number): Promise<Uint8Array | null> {
    const s = parseInput(PosInput, start, 'start');
    const l = parseInput(LenInput, len, 'len');
    return this.#r.read('ktLogNode', (q) => pgOne(q, BytesRow, 'SELECT value FROM kt_log_nodes WHERE start = $1 AND len = $2', [s, l], 'kt_log_nodes'));
  }

  ktPrefixNode(value: Uint8Array): Promise<Uint8Array | null> {
    const v = blob(parseInput(fixed(32), value, 'value'));
    return this.#r.read('ktPrefixNode', (q) => pgOne(q, NodeRow, 'SELECT node FROM kt_prefix_nodes WHERE value = $1', [v], 'kt_prefix_nodes'));
  }

  ktVersionCount(label: Uint8Array): Promise<number> {
    const l = blob(parseInput(Label, label, 'label'));
    return this.#r.read('ktVersionCount', async (q) => parseRow(CountRow, (await q('SELECT count(*) AS n FROM kt_versions WHERE label = $1', [l])).rows[0], 'kt_versions'));
  }

  ktLabelVersion(label: Uint8Array, version: number): Promise<KtVersionRecord | null> {
    const l = blob(parseInput(Label, label, 'label'));
    const v = parseInput(PosInput, version, 'version');
    return this.#r.read('ktLabelVersion', (q) =>
      pgOne(q, KtVersionRow, 'SELECT value, opening, vrf_output, vrf_proof, commitment, position FROM kt_versions WHERE label = $1 AND version = $2', [l, v], 'kt_versions'),
    );
  }

  ktAppend(input: KtAppend): Promise<void> {
    const b = parseInput(KtAppendSchema, input, 'ktAppend');
    return this.#r.write('ktAppend', async (q) => {
      // Serialise appenders on every node: the lock is released at COMMIT or ROLLBACK.
      await q('SELECT pg_advisory_xact_lock(7, 1)');
      const size = parseRow(CountRow, (await q('SELECT count(*) AS n FROM kt_log')).rows[0], 'kt_log');
      const counts = new Map<string, number>();
      for (const v of b.versions) {
        const k = blob(v.label).toString('hex');
        if (!counts.has(k)) counts.set(k, parseRow(CountRow, (await q('SELECT count(*) AS n FROM kt_versions WHERE label = $1', [blob(v.label)])).rows[0], 'kt_versions'));
      }
      checkBatch(b, size, (l) => counts.get(blob(l).toString('hex'))!);
      await q('INSERT INTO kt_log (position, timestamp, prefix_root) VALUES ($1, $2, $3)', [b.position, b.timestamp, blob(b.prefixRoot)]);
      for (const n of b.logNodes) await q('INSERT INTO kt_log_nodes (start, len, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [n.start, n.len, blob(n.value)]);
      for (const n of b.prefixNodes) await q('INSERT INTO kt_prefix_nodes (value, node) VALUES ($1, $2) ON CONFLICT DO NOTHING', [blob(n.value), blob(n.node)]);
      for (const v of b.versions) {
        const r = v.record;
        await q('INSERT INTO kt_versions (label, version, value, opening, vrf_output, vrf_proof, commitment, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          blob(v.label), v.version, blob(r.value), blob(r.opening), blob(r.vrfOutput), blob(r.vrfProof), blob(r.commitment), r.position,
        ]);
      }
    });
  }

  getDirEntity(name: string): Promise<DirEntityRow | null> {
    const n = parseInput(EntityNameSchema, name, 'name');
    return this.#r.read('getDirEntity', (q) => pgOne(q, DirEntityRowSchema, `SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE name = $1`, [n], 'dir_entities'));
  }

  getDirEntityByPrincipal(principal: string): Promise<DirEntityRow | null> {
    const p = parseInput(IdentifierSchema, principal, 'principal');
    return this.#r.read('getDirEntityByPrincipal', (q) => pgOne(q, DirEntityRowSchema, `SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE principal = $1`, [p], 'dir_entities'));
  }

  listDirEntities(kind?: 'user' | 'service' | 'group'): Promise<DirEntityRow[]> {
    const k = kind === undefined ? null : parseInput(z.enum(ENTITY_KINDS), kind, 'kind');
    return this.#r.read('listDirEntities', async (q) => {
      const res = await q(`SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE $1::text IS NULL OR kind = $1 ORDER BY name COLLATE "C"`, [k]);
      return res.rows.map((r) => parseRow(DirEntityRowSchema, r, 'dir_entities'));
    });
  }

  putDirEntity(input: PutDirEntity): Promise<DirEntityRow> {
    const p = parseInput(PutDirEntitySchema, input, 'putDirEntity');
    return this.#r.write('putDirEntity', async (q) => {
      const sel = `SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE name = $1`;
      const current = await pgOne(q, DirEntityRowSchema, `${sel} FOR UPDATE`, [p.name], 'dir_entities');
      checkPut(p, current);
      if (p.principal !== null) {
        const other = await pgOne(q, DirEntityRowSchema, `SELECT ${ENTITY_COLUMNS} FROM dir_entities WHERE principal = $1`, [p.principal], 'dir_entities');
        if (other !== null && other.name !== p.name) throw new StoreError('KW_STORE_CONFLICT', `principal ${p.principal} is bound to ${other.name}`);
      }
      const state = JSON.stringify(p.state);
      if (current === null) {
        await q(`INSERT INTO dir_entities (${ENTITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [p.name, kindOf(p.name), p.principal, state, p.seq, p.updated.getTime()]);
      } else {
        const res = await q('UPDATE dir_entities SET principal = $1, state = $2, seq = $3, updated = $4 WHERE name = $5 AND seq = $6', [
          p.principal, state, p.seq, p.updated.getTime(), p.name, p.seq - 1,
        ]);
        if (res.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', `${p.name} changed concurrently`);
      }
      return (await pgOne(q, DirEntityRowSchema, sel, [p.name], 'dir_entities'))!;
    });
  }

  createDirEnrollToken(input: NewDirEnrollToken): Promise<DirEnrollTokenRow> {
    const t = parseInput(NewDirEnrollTokenSchema, input, 'createDirEnrollToken');
    return this.#r.write('createDirEnrollToken', async (q) => {
      if ((await q('SELECT 1 FROM dir_entities WHERE name = $1', [t.entity])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `${t.entity} does not exist`);
      if ((await q('SELECT 1 FROM dir_enroll_tokens WHERE id = $1 OR token_hash = $2', [t.id, t.tokenHash])).rowCount > 0) {
        throw new StoreError('KW_STORE_CONFLICT', `enrollment token ${t.id} exists`);
      }
      await q(`INSERT INTO dir_enroll_tokens (${TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)`, [t.id, t.entity, t.tokenHash, t.createdBy, t.created.getTime(), t.expiresAt.getTime()]);
      return (await pgOne(q, DirEnrollTokenRowSchema, `SELECT ${TOKEN_COLUMNS} FROM dir_enroll_tokens WHERE id = $1`, [t.id], 'dir_enroll_tokens'))!;
    });
  }

  getDirEnrollTokenByHash(tokenHash: string): Promise<DirEnrollTokenRow | null> {
    const h = parseInput(TokenHashSchema, tokenHash, 'token hash');
    return this.#r.read('getDirEnrollTokenByHash', (q) => pgOne(q, DirEnrollTokenRowSchema, `SELECT ${TOKEN_COLUMNS} FROM dir_enroll_tokens WHERE token_hash = $1`, [h], 'dir_enroll_tokens'));
  }

  useDirEnrollToken(id: string, at: Date): Promise<DirEnrollTokenRow> {
    const i = parseInput(IdentifierSchema, id, 'token id');
    const t = parseInput(TimeSchema, at, 'at');
    return this.#r.write('useDirEnrollToken', async (q) => {
      if ((await q('SELECT 1 FROM dir_enroll_tokens WHERE id = $1', [i])).rowCount === 0) throw new StoreError('KW_STORE_NOT_FOUND', `enrollment token ${i} does not exist`);
      const res = await q(`UPDATE dir_enroll_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL RETURNING ${TOKEN_COLUMNS}`, [t.getTime(), i]);
      if (res.rowCount !== 1) throw new StoreError('KW_STORE_CONFLICT', 'the enrollment token was used already');
      return parseRow(DirEnrollTokenRowSchema, res.rows[0], 'dir_enroll_tokens');
    });
  }
}
