/**
 * Cluster node list (issue #9, docs/deployment.md §Nodes): every server node writes a heartbeat into the
 * shared store's meta table — one key per node, `node.<id>`, plus the index key `nodes` (the ids) — every
 * {@link NODE_HEARTBEAT_MS}. GET /v1/sys/nodes lists them; a node not seen for 3 intervals is "stale".
 * The index is a read-modify-write shared by the nodes: a lost update is healed by the next heartbeat.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Store } from '../store/index.js';

export const NODE_HEARTBEAT_MS = 5000;
const STALE_AFTER = 3;
const INDEX_KEY = 'nodes';
const MAX_NODES = 256;

export const NodeRecord = z.strictObject({
  id: z.string(),
  version: z.string(),
  started_at: z.string(),
  last_seen: z.string(),
  sealed: z.boolean(),
  keyholder: z.enum(['up', 'down']),
  hsm: z.string().nullable(),
  /**
   * The directory's public keys (base64url) this node's keyholder holds, once the node has opened them
   * (first directory use); null or absent before, or without a directory (absent: a node of an older
   * version). Every node of a deployment must show the same: `keyward doctor` (`directory-keys-differ`).
   */
  directory: z.strictObject({ signature_key: z.string(), vrf_key: z.string() }).nullable().optional(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;
export const NodeView = NodeRecord.extend({ stale: z.boolean() });

type MetaStore = Pick<Store, 'getMeta' | 'setMeta'>;

function parseIndex(v: string | null): string[] {
  if (!v) return [];
  try {
    const ids: unknown = JSON.parse(v);
    return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string').slice(0, MAX_NODES) : [];
  } catch { return []; }
}

/** The nodes of the shared store, newest first; `stale` when last seen more than 3 heartbeats ago. */
export async function listNodes(store: Pick<MetaStore, 'getMeta'>, now = Date.now(), intervalMs = NODE_HEARTBEAT_MS): Promise<z.infer<typeof NodeView>[]> {
  const out: z.infer<typeof NodeView>[] = [];
  for (const id of parseIndex(await store.getMeta(INDEX_KEY))) {
    const raw = await store.getMeta(`node.${id}`);
    if (!raw) continue;
    let rec: NodeRecord;
    try { rec = NodeRecord.parse(JSON.parse(raw)); } catch { continue; }
    out.push({ ...rec, stale: now - Date.parse(rec.last_seen) > STALE_AFTER * intervalMs });
  }
  return out.sort((a, b) => b.last_seen.localeCompare(a.last_seen));
}

export interface NodeFacts { sealed: boolean; keyholder: 'up' | 'down'; hsm: string | null; directory?: { signature_key: string; vrf_key: string } | null }

/** This node's heartbeat: writes at start, then every interval (unref'd timer), until stop(). */
export class NodeHeartbeat {
  readonly id = `${hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 48)}-${randomBytes(3).toString('hex')}`;
  readonly #startedAt = new Date().toISOString();
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;

  constructor(private readonly opts: { store: MetaStore; version: string; facts: () => Promise<NodeFacts>; intervalMs?: number }) {}

  start(): void {
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), this.opts.intervalMs ?? NODE_HEARTBEAT_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beating;
  }

  #tick(): void {
    if (this.#beating) return;
    this.#beating = this.beat().catch(() => undefined).finally(() => { this.#beating = null; });
  }

  /** One heartbeat (exported for tests). */
  async beat(): Promise<void> {
    const facts = await this.opts.facts();
    const rec: NodeRecord = { id: this.id, version: this.opts.version, started_at: this.#startedAt, last_seen: new Date().toISOString(), ...facts };
    await this.opts.store.setMeta(`node.${this.id}`, JSON.stringify(rec));
    const ids = parseIndex(await this.opts.store.getMeta(INDEX_KEY));
    if (!ids.includes(this.id)) await this.opts.store.setMeta(INDEX_KEY, JSON.stringify([...ids, this.id].slice(-MAX_NODES)));
  }
}
