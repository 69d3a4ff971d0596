/**
 * Test doubles and helpers for the audit log: an array-backed storage, a
 * storage over a real SQLite file (better-sqlite3, one small table with the
 * same append-only triggers as the real store), log keys, and event makers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { generateSignerKey, newSigner, type NoteSigner } from '@keyward/tlog';
import { isAuditError, type AuditErrorCode } from '../../src/audit/errors.js';
import type { AuditEventInput } from '../../src/audit/event.js';
import { AuditLog, type AuditAppend, type AuditCheckpointRecord, type AuditStorage, type StoredEvent } from '../../src/audit/log.js';

// --- storages -------------------------------------------------------------------------------

/** Array-backed storage. `rows` is exposed so tests can tamper with it like an attacker with file access. */
export class MemoryStorage implements AuditStorage {
  rows: { index: number; event: Uint8Array }[] = [];
  checkpoints: AuditCheckpointRecord[] = [];

  append(r: AuditAppend): Promise<number> {
    if (r.index !== this.rows.length) return Promise.reject(new Error(`append at ${r.index}, next is ${this.rows.length}`));
    this.rows.push({ index: r.index, event: r.event.slice() });
    return Promise.resolve(r.index);
  }

  read(from: number, to: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.rows.filter((r) => r.index >= from && r.index < to).map((r) => ({ index: r.index, event: r.event.slice() })));
  }

  size(): Promise<number> {
    return Promise.resolve(this.rows.length);
  }

  latestCheckpoint(): Promise<string | null> {
    const best = [...this.checkpoints].sort((a, b) => b.size - a.size)[0];
    return Promise.resolve(best?.note ?? null);
  }

  saveCheckpoint(c: AuditCheckpointRecord): Promise<void> {
    this.checkpoints.push(c);
    return Promise.resolve();
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_events (
  idx       INTEGER PRIMARY KEY CHECK (idx >= 0),
  time      INTEGER NOT NULL,
  event     BLOB NOT NULL,
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
  size INTEGER PRIMARY KEY CHECK (size >= 0),
  root BLOB NOT NULL CHECK (length(root) = 32),
  note TEXT NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_events_gapless BEFORE INSERT ON audit_events
WHEN NEW.idx IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_events)
BEGIN SELECT RAISE(ABORT, 'audit events are appended at the next index'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
`;

/** Drops the append-only triggers: what an attacker holding the database file can do. */
export const DROP_TRIGGERS = `
DROP TRIGGER audit_events_gapless; DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;
`;

/** Storage over a real SQLite file, with better-sqlite3 directly. */
export class SqliteStorage implements AuditStorage {
  readonly db: BetterSqlite3.Database;

  constructor(readonly path: string) {
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  append(r: AuditAppend): Promise<number> {
    return Promise.resolve().then(() => {
      this.db.prepare('INSERT INTO audit_events (idx, time, event, leaf_hash) VALUES (?, ?, ?, ?)').run(r.index, r.time, Buffer.from(r.event), Buffer.from(r.leafHash));
      return r.index;
    });
  }

  read(from: number, to: number): Promise<StoredEvent[]> {
    const rows = this.db.prepare('SELECT idx, event FROM audit_events WHERE idx >= ? AND idx < ? ORDER BY idx').all(from, to) as { idx: number; event: Buffer }[];
    return Promise.resolve(rows.map((r) => ({ index: r.idx, event: Uint8Array.from(r.event) })));
  }

  size(): Promise<number> {
    const row = this.db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number };
    return Promise.resolve(row.n);
  }

  latestCheckpoint(): Promise<string | null> {
    const row = this.db.prepare('SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1').get() as { note: string } | undefined;
    return Promise.resolve(row?.note ?? null);
  }

  saveCheckpoint(c: AuditCheckpointRecord): Promise<void> {
    this.db.prepare('INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)').run(c.size, Buffer.from(c.root), c.note);
    return Promise.resolve();
  }

  close(): void {
    this.db.close();
  }
}

const dirs: string[] = [];
/** A fresh database path in a private temporary directory. */
export function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-audit-'));
  dirs.push(dir);
  return join(dir, 'audit.db');
}
/** Removes the temporary directories (call from `after`). */
export function cleanTemp(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

// --- keys, clock, events -------------------------------------------------------------------

export const ORIGIN = 'keyward.example/audit/test-1';

/** A log key pair, deterministic per label. */
export function logKey(label = 'a', origin = ORIGIN): { signer: NoteSigner; skey: string; vkey: string } {
  const seed = new Uint8Array(32).fill(label.charCodeAt(0));
  const { signerKey, verifierKey } = generateSignerKey(origin, seed);
  return { signer: newSigner(signerKey), skey: signerKey, vkey: verifierKey };
}

/** A clock that advances one millisecond per call from 2025-01-01. */
export function fakeClock(start = Date.UTC(2025, 0, 1)): () => Date {
  let t = start;
  return () => new Date(t++);
}

/** A plausible event input number `i` (varied, deterministic). */
export function sampleInput(i: number): AuditEventInput {
  const denied = i % 5 === 3;
  return {
    ns: i % 7 === 6 ? null : `ns-${i % 3}`,
    principal: i % 7 === 6 ? null : `svc-${i % 4}`,
    auth: i % 7 === 6 ? 'none' : i % 2 === 0 ? 'token' : 'signature',
    op: ['keys.create', 'keys.rotate', 'data.datakey', 'data.unwrap', 'sys.unseal'][i % 5]!,
    target: i % 7 === 6 ? {} : { key: `key-${i % 11}`, version: 1 + (i % 3) },
    outcome: denied ? 'denied' : 'allowed',
    code: denied ? 'KW_FORBIDDEN' : null,
    request: (i * 2654435761 >>> 0).toString(16).padStart(8, '0').repeat(8),
    details: { n: i, context: { tenant: `hmac-sha256:v1:${'ab'.repeat(32)}` } },
    hmac_key_version: 1,
  };
}

/** A log over `storage` with `n` sample events and a checkpoint (when n or `checkpoint` asks for it). */
export async function buildLog(n: number, options: { storage?: AuditStorage; label?: string; input?: (i: number) => AuditEventInput; checkpoint?: boolean } = {}): Promise<{ log: AuditLog; storage: AuditStorage; key: ReturnType<typeof logKey> }> {
  const storage = options.storage ?? new MemoryStorage();
  const log = new AuditLog(storage, { origin: ORIGIN, now: fakeClock() });
  const key = logKey(options.label ?? 'a');
  for (let i = 0; i < n; i++) await log.appendEvent((options.input ?? sampleInput)(i));
  if (options.checkpoint ?? true) await log.checkpoint(key.signer);
  return { log, storage, key };
}

// --- assertions -----------------------------------------------------------------------------

/** Awaits `fn` and asserts an AuditError of `code`. */
export async function rejectsAudit(fn: () => unknown, code: AuditErrorCode): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${code}, but it succeeded`);
  assert.ok(isAuditError(caught), `expected an AuditError ${code}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : typeof caught}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
}

/** Export text → [header, ...event lines] (without newlines). */
export function splitExport(text: string): string[] {
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

/** [header, ...event lines] → export text. */
export function joinExport(lines: readonly string[]): string {
  return lines.map((l) => l + '\n').join('');
}
