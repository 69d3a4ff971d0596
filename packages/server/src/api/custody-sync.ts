/**
 * The API's side of custody sync (keyholder/custody-sync.ts; docs/key-service-crypto.md
 * §Rekey in a cluster). After a rekey the completing node stores the keyholder's
 * authenticated share-set record in the shared store (meta row `custody.sync`); every
 * node hands it to its keyholder — unsealed: on the 1 s sync timer (`custody-sync`,
 * adopted when newer and its MAC verifies); sealed: with each unseal share, so old
 * shares are refused with KW_SHARES_SUPERSEDED once the master key is combined and
 * new shares unseal a node that had not adopted them yet. The API only relays: it
 * cannot forge a record (the MAC key derives from the master key).
 */
import { custodyRecordSchema, type CustodyRecord } from '../keyholder/custody-sync.js';
import type { Store } from '../store/index.js';
import type { App } from './app.js';

export const CUSTODY_META_KEY = 'custody.sync';

type MetaStore = Pick<Store, 'getMeta' | 'setMeta'>;

/** The published record, or null (none, or a row that does not parse: the keyholder would refuse it anyway). */
export async function readCustodyRecord(store: MetaStore): Promise<CustodyRecord | null> {
  const raw = await store.getMeta(CUSTODY_META_KEY);
  if (raw === null) return null;
  try {
    const r = custodyRecordSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** Stores `record` unless the store already holds the same or a newer generation. */
export async function publishCustodyRecord(store: MetaStore, record: CustodyRecord): Promise<void> {
  const cur = await readCustodyRecord(store);
  if (cur && cur.shares.initId === record.shares.initId && cur.shares.generation >= record.shares.generation) return;
  await store.setMeta(CUSTODY_META_KEY, JSON.stringify(record));
}

/** Creates the periodic sync of one node: hands a record it has not handed yet to its keyholder (nothing while sealed). */
export function custodySyncer(app: App): () => Promise<void> {
  let handed: string | null = null;
  return async () => {
    const record = await readCustodyRecord(app.ctx.store);
    if (!record || record.mac === handed) return;
    let r;
    try {
      r = await app.ctx.keyholder.call('custody-sync', { record });
    } catch (e) {
      // A record this deployment's master key does not authenticate is not offered again; KW_SEALED is retried.
      if ((e as { code?: unknown }).code === 'KW_INVALID_ARGUMENT') handed = record.mac;
      throw e;
    }
    handed = record.mac;
    if (r.taken) {
      await app.ctx.audit.record({
        ns: null, principal: null, auth: 'none', op: 'sys.custody_sync', outcome: 'allowed',
        details: { generation: r.generation, threshold: record.shares.threshold, shares: record.shares.shareHashes.length },
      });
    }
  };
}
