/**
 * Sealed columns: each chosen column value of a row is its own envelope,
 * bound to where it belongs, so a value copied to another row, column or
 * table does not open there.
 *
 * Encryption context of a value (in this order, then the application's pairs):
 *
 *   integration = pg-column/v1, table = <table>, column = <column>, row = <row key>
 *
 * `table` is the name given to {@link SealedColumns} (use one stable,
 * schema-qualified name, e.g. `public.patients`); `row` is the row key as a
 * string (the primary key: `String(value)`; for a composite key, a stable
 * encoding of your choice, e.g. JSON of the parts). The row key must be
 * known before the insert (client-generated ids, not `serial`).
 *
 * The sealed plaintext is a type byte (0x01 text, UTF-8; 0x02 bytes) and the
 * value. SQL NULL is stored as NULL (not sealed: that a value is absent is
 * visible). The stored form is a container (container.ts) around the
 * envelope.
 *
 * Blind index (optional): `HMAC-SHA256` inside the key service (`mac`, an
 * `hmac-sha256` key) over
 *
 *   "keyward/v1 blind-index" ‖ 0x00 ‖ u16 len ‖ table ‖ u16 len ‖ column ‖ typed value
 *
 * stored as the service writes it (`kw:v<N>:<tag>`) in a separate column,
 * for equality search without opening. See docs/integrations.md for what it
 * leaks and how it rotates.
 */
import { decodeKmsStanza, encodeKmsStanza, kmsMac, KmsKeyService } from '@keyward/client';
import { open, type Identity, type Stanza, type StanzaContext } from '@keyward/core';
import { IntegrationError, invalid } from '../errors.js';
import {
  bindContext, checkOpening, checkSealing, identitiesOf, openWith, sealWith,
  type OpeningOptions, type Pairs, type SealingOptions,
} from '../sealing.js';
import { decodeContainer, encodeContainer, type KeyOverride } from './container.js';

export const COLUMN_PURPOSE = 'pg-column/v1';
const TEXT = 0x01;
const BYTES = 0x02;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type ColumnValue = string | Uint8Array;

export interface BlindIndexOptions {
  /** The key service client whose `mac` computes the index. */
  readonly service: KmsKeyService;
  /** `"ns/name"` of an `hmac-sha256` key. */
  readonly key: string;
  /** Sealed column → the column that holds its index, e.g. `{ email: 'email_bidx' }`. */
  readonly columns: Readonly<Record<string, string>>;
}

export interface SealedColumnsOptions {
  /** The table name bound into every value (stable, schema-qualified). */
  readonly table: string;
  /** The sealed columns. */
  readonly columns: readonly string[];
  /** How values are sealed (writers). */
  readonly seal?: SealingOptions;
  /** How values are opened (readers). */
  readonly open?: OpeningOptions;
  readonly blindIndex?: BlindIndexOptions;
}

/** The `kms` stanza of an envelope, read without decrypting anything (or null when it has none). */
export async function readKmsStanza(envelope: Uint8Array): Promise<{ stanza: Stanza; context: Pairs } | null> {
  let found: { stanza: Stanza; context: Pairs } | null = null;
  const probe: Identity = {
    type: 'kms',
    unwrap(stanza: Stanza, ctx: StanzaContext) {
      found ??= { stanza: { type: stanza.type, fields: stanza.fields.map((f) => f.slice()) }, context: ctx.context.map(([k, v]) => [k, v]) };
      return Promise.resolve(null); // declines: nothing is decrypted
    },
  };
  try {
    await open(envelope, { identities: [probe], anyContext: true });
  } catch {
    // Expected: no identity opened it.
  }
  return found;
}

/** An identity that opens the envelope's `kms` stanza with a rewrapped blob instead of the stanza's own. */
function overrideIdentity(service: KmsKeyService, ov: KeyOverride): Identity {
  return {
    type: 'kms',
    unwrap(stanza: Stanza, ctx: StanzaContext) {
      const p = decodeKmsStanza(stanza);
      if (!p) return Promise.resolve(null);
      return service.unwrap(encodeKmsStanza(p.keyRef, ov.version, ov.wrapped), ctx);
    },
  };
}

function encodeValue(v: ColumnValue): Uint8Array {
  if (typeof v === 'string') {
    const b = utf8.encode(v);
    const out = new Uint8Array(1 + b.length);
    out[0] = TEXT;
    out.set(b, 1);
    return out;
  }
  if (v instanceof Uint8Array) {
    const out = new Uint8Array(1 + v.length);
    out[0] = BYTES;
    out.set(v, 1);
    return out;
  }
  throw invalid('a sealed column value is a string or a Uint8Array');
}

function decodeValue(b: Uint8Array): ColumnValue {
  if (b[0] === TEXT) {
    try {
      return utf8Strict.decode(b.subarray(1));
    } catch {
      throw new IntegrationError('KW_INT_MALFORMED_FRAME', 'sealed text value is not UTF-8');
    }
  }
  if (b[0] === BYTES) return b.slice(1);
  throw new IntegrationError('KW_INT_MALFORMED_FRAME', 'sealed column value has an unknown type byte');
}

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

/**
 * @example
 * const cols = new SealedColumns({ table: 'public.patients', columns: ['ssn', 'notes'], seal: { kms: { service: kms, key: 'app/rows' } }, open: { kms } });
 * const stored = await cols.sealValue('ssn', patientId, '123-45-6789');   // → bytea
 * const ssn = await cols.openValue('ssn', patientId, stored);
 */
export class SealedColumns {
  readonly table: string;
  readonly columns: readonly string[];
  readonly #seal: SealingOptions | undefined;
  readonly #open: OpeningOptions | undefined;
  readonly blindIndexOptions: BlindIndexOptions | undefined;

  constructor(options: SealedColumnsOptions) {
    if (!options || typeof options.table !== 'string' || options.table.length === 0) throw invalid('table is required');
    const columns: readonly string[] = options.columns; // (Array.isArray would narrow it to any[])
    if (!Array.isArray(options.columns) || columns.length === 0 || columns.some((c) => typeof c !== 'string' || c.length === 0)) throw invalid('columns must be non-empty names');
    if (new Set(columns).size !== columns.length) throw invalid('columns must be distinct');
    this.table = options.table;
    this.columns = [...columns];
    this.#seal = options.seal ? checkSealing(options.seal, 'sealed columns') : undefined;
    this.#open = options.open ? checkOpening(options.open, 'sealed columns') : undefined;
    if (!this.#seal && !this.#open) throw invalid('give seal options, open options, or both');
    const bi = options.blindIndex;
    if (bi) {
      if (!(bi.service instanceof KmsKeyService) || typeof bi.key !== 'string') throw invalid('blindIndex needs a KmsKeyService and an hmac key "ns/name"');
      for (const [c, idx] of Object.entries(bi.columns)) {
        if (!this.columns.includes(c)) throw invalid(`blind index for "${c}", which is not a sealed column`);
        if (typeof idx !== 'string' || idx.length === 0 || this.columns.includes(idx)) throw invalid(`the index column of "${c}" must be a plain column name`);
      }
    }
    this.blindIndexOptions = bi;
  }

  /** The encryption context of `column` in row `rowKey` (module comment). */
  context(column: string, rowKey: string): Pairs {
    if (!this.columns.includes(column)) throw invalid(`"${column}" is not a sealed column of ${this.table}`);
    if (typeof rowKey !== 'string' || rowKey.length === 0) throw invalid('the row key is a non-empty string');
    const extra = this.#seal?.context ?? this.#open?.context;
    return bindContext([['integration', COLUMN_PURPOSE], ['table', this.table], ['column', column], ['row', rowKey]], extra);
  }

  /** Seals one value for (`column`, `rowKey`); the result is stored as `bytea`. */
  async sealValue(column: string, rowKey: string, value: ColumnValue): Promise<Buffer> {
    if (!this.#seal) throw invalid('these sealed columns have no seal options');
    const plain = encodeValue(value);
    try {
      return encodeContainer(await sealWith(this.#seal, plain, this.context(column, rowKey), `${this.table}.${column}`));
    } finally {
      plain.fill(0);
    }
  }

  /** Opens the stored value of (`column`, `rowKey`). A value of another row or column fails with `KW_INT_CONTEXT_MISMATCH`. */
  async openValue(column: string, rowKey: string, stored: Uint8Array): Promise<ColumnValue> {
    if (!this.#open) throw invalid('these sealed columns have no open options');
    const { override, envelope } = decodeContainer(stored);
    const o = this.#open;
    const identities = override && o.kms ? [...(o.identities ?? []), overrideIdentity(o.kms, override)] : identitiesOf(o);
    const r = await openWith(o, envelope, this.context(column, rowKey), `${this.table}.${column} of row ${rowKey}`, identities);
    try {
      return decodeValue(r.plaintext);
    } finally {
      r.plaintext.fill(0);
    }
  }

  /** Seals every sealed column present in `values` and computes the blind indexes; other fields pass unchanged. */
  async sealRow(rowKey: string, values: Readonly<Record<string, unknown>>): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = { ...values };
    for (const c of this.columns) {
      const v = values[c];
      if (v === undefined) continue;
      if (v === null) {
        out[c] = null;
        const idx = this.blindIndexOptions?.columns[c];
        if (idx) out[idx] = null;
        continue;
      }
      out[c] = await this.sealValue(c, rowKey, v as ColumnValue);
      const idx = this.blindIndexOptions?.columns[c];
      if (idx) out[idx] = await this.blindIndex(c, v as ColumnValue);
    }
    return out;
  }

  /** Opens every sealed column present in `row` (NULL stays null). */
  async openRow(rowKey: string, row: Readonly<Record<string, unknown>>): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = { ...row };
    for (const c of this.columns) {
      const v = row[c];
      if (v === undefined || v === null) continue;
      if (!(v instanceof Uint8Array)) throw new IntegrationError('KW_INT_NOT_SEALED', `${this.table}.${c} of row ${rowKey} is not bytes`);
      out[c] = await this.openValue(c, rowKey, v);
    }
    return out;
  }

  /** The blind index of `value` in `column` (`kw:v<N>:…`), for `WHERE <index column> = $1`. */
  async blindIndex(column: string, value: ColumnValue): Promise<string> {
    const bi = this.blindIndexOptions;
    if (!bi || !bi.columns[column]) throw invalid(`"${column}" has no blind index`);
    const t = utf8.encode(this.table);
    const c = utf8.encode(column);
    if (t.length > 0xffff || c.length > 0xffff) throw invalid('table or column name too long');
    const v = encodeValue(value);
    const msg = Buffer.concat([utf8.encode('keyward/v1 blind-index'), Uint8Array.of(0), u16(t.length), t, u16(c.length), c, v]);
    try {
      return (await kmsMac(bi.service.http, bi.key, msg)).mac;
    } catch (e) {
      throw new IntegrationError('KW_INT_KEY_SERVICE_FAILED', `blind index of ${this.table}.${column}: the key service mac failed`, { cause: e });
    } finally {
      msg.fill(0);
      v.fill(0);
    }
  }
}
