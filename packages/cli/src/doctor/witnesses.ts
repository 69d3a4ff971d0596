/**
 * Witness checks (docs/witness.md): are witnesses configured, do at least k
 * of them answer, and are the audit log's checkpoints being cosigned? Facts
 * come from the server config file and the store (`--data`) or from
 * `GET /v1/audit/witnesses` (`--addr`); each witness URL is probed (any HTTP
 * answer counts as reachable).
 */
import path from 'node:path';
import * as server from '../lib/server-modules.js';
import { finding, type Finding } from './findings.js';

export interface WitnessFacts {
  /** The configured witnesses (null or empty: none). */
  readonly witnesses: readonly { readonly name: string; readonly url: string }[] | null;
  readonly k: number | null;
  /** The newest checkpoint k witnesses cosigned. */
  readonly witnessed: { readonly size: number; readonly time: string } | null;
  /** The size of the newest signed checkpoint. */
  readonly latestSize: number | null;
  /** Where the witnesses are configured (for the fix). */
  readonly configHint: string;
}

export interface WitnessCheckOptions {
  readonly now: Date;
  readonly maxAgeSeconds: number;
  readonly timeoutMs?: number;
}

async function reachable(url: string, timeoutMs: number): Promise<boolean> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    await fetch(`${url.replace(/\/+$/, '')}/`, { signal: ctl.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(t);
  }
}

export async function witnessFindings(f: WitnessFacts, o: WitnessCheckOptions): Promise<Finding[]> {
  const list = f.witnesses ?? [];
  if (list.length === 0) {
    return [finding('witnesses-not-configured', 'no witness cosigns the audit checkpoints',
      `run a witness on another machine: keyward witness --new-key witness.key --name witness.example/w1, then keyward witness --key-file witness.key --state DIR --log audit-verifier-key.txt; add "witnesses": [{ "name", "url", "key" }] (and "witnesses_k") to ${f.configHint} and restart keyward server`)];
  }
  const out: Finding[] = [];
  const k = f.k ?? list.length;
  const up = await Promise.all(list.map((w) => reachable(w.url, o.timeoutMs ?? 5000)));
  const down = list.filter((_, i) => !up[i]);
  if (list.length - down.length < k) {
    out.push(finding('witnesses-unreachable', `only ${list.length - down.length} of ${list.length} witnesses answer, ${k} must cosign: ${down.map((w) => `${w.name} (${w.url})`).join(', ')} unreachable`,
      `start the witness (keyward witness --key-file KEY --state DIR --log audit-verifier-key.txt) or fix its address in ${f.configHint}; check with: curl ${down[0]!.url}/`,
      { details: { k, n: list.length, unreachable: down.map((w) => w.name) } }));
  } else if (down.length > 0) {
    out.push(finding('witnesses-unreachable', `${down.length} of ${list.length} witnesses do not answer (${down.map((w) => w.name).join(', ')}); ${k} must cosign`,
      `start the witness or fix its address in ${f.configHint}; check with: curl ${down[0]!.url}/`,
      { severity: 'warning', details: { k, n: list.length, unreachable: down.map((w) => w.name) } }));
  }
  const latest = f.latestSize ?? 0;
  if (latest > 0) {
    const age = f.witnessed === null ? null : (o.now.getTime() - Date.parse(f.witnessed.time)) / 1000;
    const behind = f.witnessed === null || f.witnessed.size < latest;
    if (behind && (age === null || age > o.maxAgeSeconds)) {
      out.push(finding('witness-cosignatures-stale', f.witnessed === null
        ? `no audit checkpoint has ${k} witness cosignatures yet (latest checkpoint: ${latest} events)`
        : `the newest checkpoint ${k} witnesses cosigned (${f.witnessed.size} events) is ${Math.round(age!)} s old; the log has ${latest} (limit ${o.maxAgeSeconds} s)`,
      'keyward doctor --addr URL --token-file FILE shows each witness\'s last error (GET /v1/audit/witnesses); start the witnesses, or restore a witness whose state was lost (docs/witness.md §Operations)',
      { details: { k, witnessedSize: f.witnessed?.size ?? null, witnessedAt: f.witnessed?.time ?? null, latestSize: latest } }));
    }
  }
  return out;
}

/** Facts for `--data DIR` (+ `--config FILE`): the config's witnesses and the store's meta rows, read-only. */
export async function witnessFactsOffline(dir: string, config: { witnesses?: unknown; witnesses_k?: unknown } | null, configFile: string | undefined): Promise<WitnessFacts> {
  const list = Array.isArray(config?.witnesses) ? (config.witnesses as { name?: unknown; url?: unknown }[]).filter((w) => typeof w?.name === 'string' && typeof w.url === 'string') as { name: string; url: string }[] : null;
  const k = typeof config?.witnesses_k === 'number' ? config.witnesses_k : null;
  const { STORE_FILE, openSqliteStoreReadOnly, META_WITNESSED } = await server.serverModule();
  let witnessed: WitnessFacts['witnessed'] = null;
  let latestSize: number | null = null;
  try {
    const store = await openSqliteStoreReadOnly({ path: path.join(dir, STORE_FILE) });
    try {
      const v = await store.getMeta(META_WITNESSED);
      if (v !== null) witnessed = JSON.parse(v) as { size: number; time: string };
      latestSize = (await store.latestAuditCheckpoint())?.size ?? null;
    } finally {
      store.close();
    }
  } catch {
    // The store findings (store-unreadable) already say why.
  }
  return { witnesses: list, k, witnessed, latestSize, configHint: configFile ?? 'the server config file (keyward server --config FILE)' };
}
