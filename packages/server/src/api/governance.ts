/**
 * The API's side of signed governance (mfa/governance.ts, keyholder/
 * governance.ts; docs/mfa.md §Signed policy). The keyholder holds the
 * snapshot in force; the API asks it for that snapshot (the quorum rules and
 * approval keys it reads come from there, not from the database), anchors
 * governance at the first change (genesis over the database's policies and
 * roles at that moment), and has the keyholder check and sign every policy,
 * role, quorum-rule and approval-key change inside the change's own
 * transaction, storing a copy of each signed snapshot
 * (`governance_snapshots`) for readers and the offline verifier.
 */
import type { JsonValue } from '../audit/canonical-json.js';
import { PolicyDocumentSchema } from './policy.js';
import { emptyState, parseSnapshot, type GovernanceState, type Snapshot } from '../mfa/governance.js';
import type { Approval } from '../mfa/quorum.js';
import { isStoreError, type StoreTx } from '../store/index.js';
import type { App } from './app.js';
import { mfaSettings } from './mfa-settings.js';

/** A snapshot the keyholder signed, as it answers. */
export interface SignedHead {
  readonly snapshot: Snapshot;
  readonly text: string;
  readonly signature: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * The snapshot in force at this node's keyholder, or null before genesis.
 * Nodes sync through the database copies first: a newer snapshot another
 * node's keyholder signed (same deployment key) is handed to this one, which
 * checks the signature and takes it; a copy missing from the database (the
 * change's transaction failed after the keyholder signed) is stored.
 */
export async function governanceHead(app: App): Promise<SignedHead | null> {
  const { keyholder, store } = app.ctx;
  const row = await store.latestGovernanceSnapshot();
  let h = await keyholder.call('governance-head', {});
  if (row && (h.seq === null || h.seq < row.seq)) {
    try {
      await keyholder.call('governance-sync', { snapshot: row.snapshot, signature: row.signature });
      h = await keyholder.call('governance-head', {});
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'KW_INVALID_ARGUMENT') throw e; // a copy not signed by this deployment: ignored
    }
  }
  // The genesis signed at init (seq 0, no copy yet) is stored by ensureAnchored, with its audit event.
  if (h.snapshot !== null && h.signature !== null && h.seq !== null && h.hash !== null && (!row || row.seq < h.seq) && !(row === null && h.seq === 0)) {
    await storeCopy(app, null, { snapshot: h.snapshot, signature: h.signature, seq: h.seq, hash: h.hash });
  }
  if (h.snapshot === null || h.signature === null || h.seq === null || h.hash === null) return null;
  return { snapshot: parseSnapshot(h.snapshot), text: h.snapshot, signature: h.signature, seq: h.seq, hash: h.hash };
}

/** The governance state in force (empty before genesis: no quorum rule, so nothing waits). */
export async function governanceState(app: App): Promise<GovernanceState> {
  return (await governanceHead(app))?.snapshot.state ?? emptyState();
}

/** What the database holds now: the genesis base (trust on first use; see docs/mfa.md). */
async function databaseState(app: App): Promise<GovernanceState> {
  const { store } = app.ctx;
  const st = emptyState();
  for (const ns of await store.listNamespaces()) {
    for (const p of await store.listPolicies(ns.name)) {
      const d = PolicyDocumentSchema.safeParse(p.document);
      if (d.success) st.policies[`${p.ns}/${p.id}`] = { ns: p.ns, id: p.id, version: p.version, document: d.data };
    }
    for (const p of await store.listPrincipals(ns.name)) if (p.roles.length > 0) st.roles[p.id] = [...p.roles];
  }
  return st;
}

async function storeCopy(app: App, tx: StoreTx | null, r: { snapshot: string; signature: string; seq: number; hash: string }): Promise<void> {
  const row = { seq: r.seq, hash: r.hash, snapshot: r.snapshot, signature: r.signature, created: new Date() };
  try {
    await (tx ?? app.ctx.store).putGovernanceSnapshot(row);
  } catch (e) {
    if (!isStoreError(e, 'KW_STORE_CONFLICT')) throw e; // another node stored it already
  }
}

/**
 * Makes sure the keyholder holds a snapshot and the log has its genesis.
 * Outside any transaction. A deployment initialized with a signed genesis
 * (init.ts: the empty state, in keyholder.json) has it logged here, at the
 * first governance change, with its database copy in the same transaction
 * (several nodes: the copy is a compare-and-set, so it is logged once).
 * Legacy (keyholder.json from before that, or an HSM-held checkpoint key):
 * the keyholder signs a genesis over the database's state at this moment
 * (trust on first use; docs/mfa.md §Signed policy).
 */
export async function ensureAnchored(app: App): Promise<void> {
  const row = await app.ctx.store.latestGovernanceSnapshot();
  const head = await governanceHead(app);
  if (head) {
    if (row === null && head.seq === 0) await logGenesis(app, head);
    return;
  }
  try {
    const g = await app.ctx.keyholder.call('governance-genesis', { base: await databaseState(app), time: new Date().toISOString() });
    await storeCopy(app, null, g);
    await app.ctx.audit.record({
      ns: null, principal: null, auth: 'none', op: 'governance.genesis', target: {}, request: null, outcome: 'allowed',
      details: { seq: g.seq, hash: g.hash, signature: g.signature, snapshot: JSON.parse(g.snapshot) as JsonValue },
    });
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'KW_GOVERNANCE_ANCHORED') throw e; // another node anchored it meanwhile
  }
}

/** Records `governance.genesis` with the snapshot's database copy (one transaction; another node's copy: nothing). */
async function logGenesis(app: App, g: SignedHead): Promise<void> {
  try {
    await app.ctx.audit.record({
      ns: null, principal: null, auth: 'none', op: 'governance.genesis', target: {}, request: null, outcome: 'allowed',
      details: { seq: g.seq, hash: g.hash, signature: g.signature, snapshot: JSON.parse(g.text) as JsonValue, anchored: 'init' },
    }, async (tx) => {
      await tx.putGovernanceSnapshot({ seq: g.seq, hash: g.hash, snapshot: g.text, signature: g.signature, created: new Date() });
      return { result: undefined };
    });
  } catch (e) {
    if (!isStoreError(e, 'KW_STORE_CONFLICT')) throw e; // another node logged it
  }
}

/**
 * Inside the change's transaction: the keyholder checks the change against
 * the snapshot in force (with the quorum's approvals, if a rule covers it)
 * and signs the next one; a copy is stored in the same transaction. A
 * refusal (KW_QUORUM_PENDING, KW_QUORUM_INVALID, …) rolls the change back.
 */
export async function adoptChange(app: App, tx: StoreTx, p: { request: JsonValue; requester: string; approvals: readonly Approval[] }): Promise<{ seq: number; hash: string; signature: string; snapshot: string }> {
  const rp = mfaSettings(app.ctx).rp;
  const r = await app.ctx.keyholder.call('governance-adopt', {
    request: p.request as Record<string, unknown>, requester: p.requester, approvals: JSON.parse(JSON.stringify(p.approvals)) as unknown[],
    rp: { id: rp.id, name: rp.name, origins: [...rp.origins] }, time: mfaSettings(app.ctx).now().toISOString(),
  });
  await storeCopy(app, tx, r);
  return { seq: r.seq, hash: r.hash, signature: r.signature, snapshot: r.snapshot };
}

/**
 * Runs a data-plane keyholder call; if this node's keyholder refuses it on
 * its signed policy (KW_POLICY_DENIED), possibly because another node has
 * adopted a newer snapshot, syncs (governanceHead) and tries once more. The
 * keyholder decides before it spends the request's nonce and appends nothing
 * on a refusal, so the same call can be sent again.
 *
 * Always once more, not only when this sync moved the keyholder's head: the
 * once-a-second sync (server.ts) or another request may have synced it
 * between the refusal and this check, and comparing heads then returned a
 * refusal the snapshot in force no longer makes. A refusal under the newest
 * snapshot costs one more keyholder call; the API refuses what its own
 * policy check denies before the keyholder is asked.
 */
export async function withGovernance<T>(app: App, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'KW_POLICY_DENIED') throw e;
    await governanceHead(app);
    return call();
  }
}
