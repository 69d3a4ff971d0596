/**
 * Whether the deployment's signed governance (docs/mfa.md §Signed policy)
 * is anchored at init. The keyholder enforces only the policies and roles of
 * snapshots it signed, chained from a genesis (`seq 0`). `keyward init`
 * signs that genesis over the empty state and writes it into
 * `keyholder.json` (`governance`); a state file made before that, or one
 * whose checkpoint key is in the HSM (init cannot sign with it), holds none,
 * and the first governance change then has the keyholder sign a genesis over
 * whatever the database holds at that moment — trust on first use.
 *
 * Offline (`--data DIR`): `keyholder.json` without a snapshot, and no
 * `governance.genesis` in the audit log (which another node would have
 * logged, and whose signed copy this keyholder would take instead), is
 * `governance-not-anchored`, with the database's policies and roles the
 * genesis would sign in its details. A logged genesis that was not anchored
 * at init (no `anchored: "init"`) and signed a non-empty state is
 * `governance-genesis-on-first-use` (info: what it trusted). Online
 * (`--addr`): `GET /v1/governance` without a snapshot (seq null: no node's
 * keyholder holds one) is `governance-not-anchored`.
 *
 * No command re-anchors a deployment: the keyholder signs one genesis and
 * refuses another (`KW_GOVERNANCE_ANCHORED`). The fixes say so.
 */
import { readFileSync } from 'node:fs';
import { finding, type Finding } from './findings.js';

/** The reads this check needs from the read-only store. */
export interface GovernanceStoreReads {
  listNamespaces(): Promise<readonly { name: string }[]>;
  listPolicies(ns: string): Promise<readonly { ns: string; id: string }[]>;
  listPrincipals(ns: string): Promise<readonly { id: string; roles: readonly string[] }[]>;
  auditSize(): Promise<number>;
  readAuditEvents(range: { start: number; end: number }): Promise<readonly { event: string }[]>;
}

interface GenesisEvent {
  readonly index: number;
  readonly time: string | null;
  readonly anchored: string | null;
  readonly state: { policies?: Record<string, unknown>; roles?: Record<string, readonly string[]>; approvers?: Record<string, unknown>; quorum?: Record<string, unknown> };
}

const PAGE = 10_000;

/** The fix of `governance-not-anchored`; `where` says where to read the database's policies and roles. */
const notAnchoredFix = (where: string): string =>
  'no command re-anchors an existing deployment (keyward init signs the empty genesis only for a new data directory; the keyholder signs one genesis and refuses another). '
  + `Anchor it now over a state you checked: compare the policies and roles ${where} with what your administrators set, `
  + 'then, before anything else, make the first governance change yourself (e.g. keyward principal set-roles ID --role ROLE); '
  + 'check the governance.genesis event it logs (keyward audit export -o audit.jsonl) and correct any grant that is not yours with a signed change '
  + '(keyward policy put NS/ID --file FILE; {"grants": []} revokes a policy)';

/** What keyholder.json says: a snapshot or not, and where the checkpoint key lives; null when unreadable (other checks report it). */
function keyholderGovernance(stateFile: string): { snapshot: boolean; hsmCheckpointKey: boolean } | null {
  try {
    const st = JSON.parse(readFileSync(stateFile, 'utf8')) as { governance?: { snapshot?: unknown }; audit?: { hsmKeyLabel?: unknown } };
    return { snapshot: typeof st.governance?.snapshot === 'string', hsmCheckpointKey: st.audit?.hsmKeyLabel !== undefined };
  } catch {
    return null;
  }
}

/** The first `governance.genesis` event of the log, or null when none was logged. */
async function loggedGenesis(store: GovernanceStoreReads): Promise<GenesisEvent | null> {
  const size = await store.auditSize();
  for (let from = 0; from < size; from += PAGE) {
    const rows = await store.readAuditEvents({ start: from, end: Math.min(size, from + PAGE) });
    for (const [k, row] of rows.entries()) {
      if (!row.event.includes('"governance.genesis"')) continue;
      const e = JSON.parse(row.event) as { op?: unknown; time?: unknown; details?: { anchored?: unknown; snapshot?: { state?: GenesisEvent['state'] } } };
      if (e.op !== 'governance.genesis') continue;
      return {
        index: from + k, time: typeof e.time === 'string' ? e.time : null,
        anchored: typeof e.details?.anchored === 'string' ? e.details.anchored : null, state: e.details?.snapshot?.state ?? {},
      };
    }
  }
  return null;
}

/** The policies and role assignments the database holds now: what a genesis taken on first use would sign. */
async function databaseGovernance(store: GovernanceStoreReads): Promise<{ policies: string[]; roles: Record<string, string[]> }> {
  const policies: string[] = [];
  const roles: Record<string, string[]> = {};
  for (const ns of await store.listNamespaces()) {
    for (const p of await store.listPolicies(ns.name)) policies.push(`${p.ns}/${p.id}`);
    for (const p of await store.listPrincipals(ns.name)) if (p.roles.length > 0) roles[p.id] = [...p.roles];
  }
  return { policies: policies.sort(), roles };
}

const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function notAnchored(title: string, where: string, details: Record<string, unknown>): Finding {
  return finding('governance-not-anchored', title, notAnchoredFix(where), { details });
}

/** Offline: keyholder.json and, when the store could be opened, its audit log and rows. */
export async function governanceFindingsOffline(stateFile: string, store: GovernanceStoreReads | null): Promise<Finding[]> {
  const kh = keyholderGovernance(stateFile);
  if (kh === null) return [];
  const genesis = store ? await loggedGenesis(store) : null;
  const out: Finding[] = [];
  if (!kh.snapshot && genesis === null) {
    const why = kh.hsmCheckpointKey ? 'its checkpoint key is in the HSM, so init could not sign a genesis' : 'it was made before init signed a genesis';
    if (store) {
      const db = await databaseGovernance(store);
      out.push(notAnchored(
        `${stateFile} holds no signed governance snapshot (${why}): the first policy, role, approval-key or quorum change will have the keyholder sign a genesis over what the database holds then — now ${count(db.policies.length, 'policy', 'policies')} and ${count(Object.keys(db.roles).length, 'principal')} with roles (trust on first use)`,
        "listed in this finding's details", { stateFile, hsmCheckpointKey: kh.hsmCheckpointKey, policies: db.policies, roles: db.roles },
      ));
    } else {
      out.push(notAnchored(
        `${stateFile} holds no signed governance snapshot (${why}), and the store was not read to see whether another node anchored one: the first governance change may have the keyholder sign a genesis over what the database holds then (trust on first use)`,
        'in the database (keyward principal list; keyward policy get NS/ID)', { stateFile, hsmCheckpointKey: kh.hsmCheckpointKey },
      ));
    }
  }
  if (genesis !== null && genesis.anchored !== 'init') {
    const policies = Object.keys(genesis.state.policies ?? {}).sort();
    const roles = genesis.state.roles ?? {};
    const others = Object.keys(genesis.state.approvers ?? {}).length + Object.keys(genesis.state.quorum ?? {}).length;
    if (policies.length + Object.keys(roles).length + others > 0) {
      out.push(finding('governance-genesis-on-first-use',
        `the signed governance was anchored by trust on first use${genesis.time ? ` at ${genesis.time}` : ''} (audit event ${genesis.index}): its genesis signed the ${count(policies.length, 'policy', 'policies')} and the roles of ${count(Object.keys(roles).length, 'principal')} the database held then${policies.length > 0 ? ` (${policies.join(', ')})` : ''}`,
        'nothing re-anchors it (the keyholder refuses a second genesis: KW_GOVERNANCE_ANCHORED). Check that each policy and role in this finding\'s details was set by your administrators; replace any that was not with a signed change: keyward policy put NS/ID --file FILE ({"grants": []} revokes it), keyward principal set-roles ID [--role R]...',
        { details: { auditIndex: genesis.index, time: genesis.time, policies, roles } }));
    }
  }
  return out;
}

/** Online: the snapshot in force as `GET /v1/governance` answers (seq null: no node's keyholder holds one). */
export function governanceFindingOnline(head: { seq: number | null }): Finding[] {
  if (head.seq !== null) return [];
  return [notAnchored(
    'the keyholder holds no signed governance snapshot and no node signed one: the first policy, role, approval-key or quorum change will have it sign a genesis over what the database holds then (trust on first use)',
    'the database holds (keyward doctor --data DIR lists them offline; keyward principal list; keyward policy get NS/ID)', {},
  )];
}
