/**
 * Directory checks (docs/witness.md §The directory, docs/directory.md §Key
 * custody): with the directory enabled, are witnesses configured (and enough
 * of them), are its heads cosigned by k witnesses within `--witness-max-age`,
 * does each witness accept them, and do all nodes hold the same directory
 * keys? Facts come from `GET /v1/directory/witnesses` and `GET /v1/sys/nodes`
 * (`--addr`), or from the server config file and the store's meta rows
 * (`--data`, read-only).
 */
import path from 'node:path';
import * as server from '../lib/server-modules.js';
import { call, type ServiceOptions } from '../lib/service.js';
import { finding, type Finding } from './findings.js';

/** One witness as the directory's publisher last saw it. */
export interface DirectoryWitnessFact {
  readonly name: string;
  readonly url: string;
  readonly lastOk: string | null;
  readonly lastError: { readonly time: string; readonly code: string; readonly message: string } | null;
}

/** A node's heartbeat: the directory public keys it holds (null: not opened yet; absent: an older node). */
export interface DirectoryNodeFact {
  readonly id: string;
  readonly stale: boolean;
  readonly directory?: { readonly signature_key: string; readonly vrf_key: string } | null;
}

export interface DirectoryFacts {
  /** The directory is enabled on the server; nothing else is checked when it is not. */
  readonly enabled: boolean;
  readonly k: number;
  readonly n: number;
  /** Size of the directory (KEYTRANS) log; null when unknown. */
  readonly treeSize: number | null;
  /** The newest head k witnesses cosigned. */
  readonly witnessed: { readonly size: number; readonly time: string } | null;
  readonly witnesses: readonly DirectoryWitnessFact[];
  /** The nodes sharing the store (null: not known, e.g. without an admin token). */
  readonly nodes: readonly DirectoryNodeFact[] | null;
  /** Where the witnesses are configured (for the fix). */
  readonly configHint: string;
  /** The keys the checked node serves (`GET /v1/directory/config`): on a tie between nodes, those are taken as the deployment's. */
  readonly served?: { readonly signature_key: string; readonly vrf_key: string } | null;
}

export interface DirectoryCheckOptions {
  readonly now: Date;
  readonly maxAgeSeconds: number;
}

/** A witness whose last answer to the directory's publisher was a failure. */
const failing = (w: DirectoryWitnessFact): boolean => w.lastError !== null && (w.lastOk === null || Date.parse(w.lastError.time) >= Date.parse(w.lastOk));

/** The findings for {@link DirectoryFacts}. */
export function directoryFindings(f: DirectoryFacts, o: DirectoryCheckOptions): Finding[] {
  if (!f.enabled) return [];
  const out: Finding[] = [];
  const keyFindings = nodeKeyFindings(f.nodes ?? [], f.served ?? null);
  if (f.n === 0) {
    out.push(finding('directory-witnesses-not-configured', 'the directory is enabled but no witness cosigns its heads',
      `GET /v1/directory/config shows head_log_key: write it to a file and give it to each witness (keyward witness --key-file KEY --state DIR --log head-log-key.txt, repeat --log for the audit log's key); add "witnesses": [{ "name", "url", "key" }] and "witnesses_k" to ${f.configHint}, restart keyward server, and give clients KEYWARD_DIRECTORY_WITNESSES (docs/witness.md §The directory)`));
    return [...out, ...keyFindings];
  }
  if (f.k < 2) {
    out.push(finding('directory-witnesses-too-few', `k = ${f.k} of ${f.n}: one witness alone is enough to cosign a directory head`,
    `run more witnesses on machines the key service's operators do not control and list them in ${f.configHint} ("witnesses", with "witnesses_k" ≥ 2 and below their number, e.g. 2 of 3); restart keyward server and update KEYWARD_DIRECTORY_WITNESSES for clients`,
    { details: { k: f.k, n: f.n } }));
  }
  const bad = f.witnesses.filter(failing);
  if (bad.length > 0) {
    const answering = f.n - bad.length;
    const list = bad.map((w) => `${w.name} (${w.lastError!.code})`).join(', ');
    out.push(finding('directory-witnesses-failing', answering < f.k
      ? `only ${answering} of ${f.n} witnesses cosign directory heads, ${f.k} must: ${list} failed last`
      : `${bad.length} of ${f.n} witnesses failed the last directory head they were sent: ${list}; ${f.k} must cosign`,
    bad.some((w) => w.lastError!.code === 'TLOG_WITNESS_UNKNOWN_LOG')
      ? `give the witness the head log's key (GET /v1/directory/config: head_log_key): keyward witness --key-file KEY --state DIR --log head-log-key.txt --log audit-verifier-key.txt, restart it; check with: curl ${bad[0]!.url}/`
      : `start the witness or fix its address in ${f.configHint}; check with: curl ${bad[0]!.url}/; a 409/422 refusal (TLOG_WITNESS_CONFLICT, TLOG_WITNESS_REFUSED) means it holds another history: docs/operations/suspected-key-compromise.md, never reset the witness`,
    { ...(answering < f.k ? {} : { severity: 'warning' as const }), details: { k: f.k, n: f.n, failing: bad.map((w) => ({ name: w.name, url: w.url, code: w.lastError!.code, time: w.lastError!.time })) } }));
  }
  const size = f.treeSize ?? 0;
  if (size > 0 && (f.witnessed === null || f.witnessed.size < size)) {
    const age = f.witnessed === null ? null : (o.now.getTime() - Date.parse(f.witnessed.time)) / 1000;
    if (age === null || age > o.maxAgeSeconds) {
      out.push(finding('directory-head-not-cosigned', f.witnessed === null
        ? `no directory head has ${f.k} witness cosignatures yet (the log has ${size} heads)`
        : `the newest directory head ${f.k} witnesses cosigned (size ${f.witnessed.size}) is ${Math.round(age!)} s old; the log has ${size} (limit ${o.maxAgeSeconds} s)`,
      'keyward doctor --addr URL --token-file FILE lists each witness\'s last error (GET /v1/directory/witnesses); start the witnesses or give them the head log\'s key (--log, GET /v1/directory/config: head_log_key); docs/witness.md §The directory',
      { details: { k: f.k, witnessedSize: f.witnessed?.size ?? null, witnessedAt: f.witnessed?.time ?? null, treeSize: size } }));
    }
  }
  return [...out, ...keyFindings];
}

/** `directory-keys-differ`: the nodes that report directory keys do not all report the same. */
function nodeKeyFindings(nodes: readonly DirectoryNodeFact[], served: NonNullable<DirectoryFacts['served']> | null): Finding[] {
  const groups = new Map<string, DirectoryNodeFact[]>();
  for (const n of nodes) {
    if (!n.directory) continue;
    const id = `${n.directory.signature_key}.${n.directory.vrf_key}`;
    groups.set(id, [...(groups.get(id) ?? []), n]);
  }
  if (groups.size < 2) return [];
  // The keys most nodes hold are taken as the deployment's (on a tie, those of the node checked); the others are the odd ones.
  const isServed = (g: DirectoryNodeFact[]) => served !== null && g[0]!.directory!.signature_key === served.signature_key && g[0]!.directory!.vrf_key === served.vrf_key;
  const sorted = [...groups.values()].sort((a, b) => b.length - a.length || Number(isServed(b)) - Number(isServed(a)));
  const main = sorted[0]!;
  const odd = sorted.slice(1).flat();
  const short = (n: DirectoryNodeFact) => `${n.id}${n.stale ? ' (stale)' : ''}: signature key ${n.directory!.signature_key.slice(0, 12)}…`;
  return [finding('directory-keys-differ', `the nodes hold ${groups.size} different sets of directory keys: ${[main[0]!, ...odd].map(short).join('; ')}`,
    `on each odd node (${odd.map((n) => n.id).join(', ')}): stop keyward server, install -m 0600 keyholder.json from a node of ${main[0]!.id}'s keys into its data directory, start it and unseal it (docs/operations/adding-a-node.md, docs/directory.md §Key custody)`,
    { details: { nodes: sorted.map((g) => ({ signature_key: g[0]!.directory!.signature_key, vrf_key: g[0]!.directory!.vrf_key, nodes: g.map((n) => n.id) })) } })];
}

/** Facts for `--data DIR` (+ `--config FILE`): the config's directory and witnesses, the store's meta rows, read-only. */
export async function directoryFactsOffline(dir: string, config: { directory?: unknown; witnesses?: unknown; witnesses_k?: unknown } | null, configFile: string | undefined): Promise<DirectoryFacts> {
  const hint = configFile ?? 'the server config file (keyward server --config FILE)';
  const dirCfg = config?.directory as { enabled?: unknown; requireDevices?: unknown } | undefined;
  const enabled = dirCfg?.enabled === true || dirCfg?.requireDevices === true;
  const list = Array.isArray(config?.witnesses) ? (config.witnesses as { name?: unknown; url?: unknown }[]).filter((w) => typeof w?.name === 'string' && typeof w.url === 'string') as { name: string; url: string }[] : [];
  const k = typeof config?.witnesses_k === 'number' ? config.witnesses_k : list.length;
  const empty: DirectoryFacts = { enabled, k, n: list.length, treeSize: null, witnessed: null, witnesses: [], nodes: null, configHint: hint };
  if (!enabled) return empty;
  const { STORE_FILE, openSqliteStoreReadOnly, readDirectoryWitnessState, listNodes } = await server.serverModule();
  try {
    const store = await openSqliteStoreReadOnly({ path: path.join(dir, STORE_FILE) });
    try {
      const st = await readDirectoryWitnessState(store, list.length === 0 ? null : { k, witnesses: list });
      return { ...empty, treeSize: st.treeSize, witnessed: st.witnessed, witnesses: st.witnesses, nodes: await listNodes(store) };
    } finally {
      store.close();
    }
  } catch {
    // The store findings (store-unreadable) already say why.
    return empty;
  }
}

/** Facts for `--addr` with an admin token: `GET /v1/directory/witnesses` and `GET /v1/sys/nodes`. */
export async function directoryFactsOnline(service: ServiceOptions): Promise<DirectoryFacts> {
  type Ws = {
    head: { tree_size: number } | null; k: number; n: number;
    witnessed: { tree_size: number; time: string } | null;
    witnesses: { name: string; url: string; last_ok: string | null; last_error: { time: string; code: string; message: string } | null }[];
  };
  const hint = 'the server config file (keyward server --config FILE)';
  // Without the directory (or a server older than the route): nothing to check.
  const ws = await call<Ws>(service, 'GET', '/v1/directory/witnesses').catch((e: unknown): null => {
    const code = (e as { code?: string }).code;
    if (code === 'KW_DIR_NOT_ENABLED' || code === 'KW_NOT_FOUND') return null;
    throw e;
  });
  if (ws === null) return { enabled: false, k: 0, n: 0, treeSize: null, witnessed: null, witnesses: [], nodes: null, configHint: hint };
  const { nodes } = await call<{ nodes: DirectoryNodeFact[] }>(service, 'GET', '/v1/sys/nodes');
  const cfg = await call<{ signature_public_key: string; vrf_public_key: string }>(service, 'GET', '/v1/directory/config').catch(() => null);
  return {
    enabled: true, k: ws.k, n: ws.n, treeSize: ws.head?.tree_size ?? 0,
    witnessed: ws.witnessed === null ? null : { size: ws.witnessed.tree_size, time: ws.witnessed.time },
    witnesses: ws.witnesses.map((w) => ({ name: w.name, url: w.url, lastOk: w.last_ok, lastError: w.last_error })),
    nodes, configHint: hint, served: cfg === null ? null : { signature_key: cfg.signature_public_key, vrf_key: cfg.vrf_public_key },
  };
}
