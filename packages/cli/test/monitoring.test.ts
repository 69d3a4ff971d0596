/**
 * The monitoring files stay true to the server: every metric referenced by
 * the Prometheus alert rules (deploy/monitoring/alerts.yml) and the Grafana
 * dashboard, and every metric of the catalog (docs/operations/metrics.md),
 * exists in the /metrics output of a real `keyward server` process — and the
 * catalog lists every keyward_* metric the server exposes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { BIN } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let server: ChildProcess | null = null;
let metricsText = '';

before(async () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  server = spawn(process.execPath, [BIN, 'server', '--dev', '--listen', '127.0.0.1:0', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  server.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 60_000;
  while (!out.endsWith('}\n')) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`dev server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { url } = JSON.parse(out) as { url: string };
  // Some traffic, so labelled series have samples too.
  await fetch(`${url}/v1/sys/health`);
  await fetch(`${url}/v1/keys/none`, { headers: { authorization: 'Bearer kw_not-a-token' } });
  metricsText = await (await fetch(`${url}/metrics`)).text();
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
});

/** name → type, from the `# TYPE` lines. */
function exposed(): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of metricsText.matchAll(/^# TYPE (\S+) (\S+)$/gm)) m.set(x[1]!, x[2]!);
  return m;
}

/** True when `name` is exposed, directly or as a histogram/summary series (`_bucket`, `_sum`, `_count`). */
function exists(name: string, types: Map<string, string>): boolean {
  if (types.has(name)) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && (types.get(base) === 'histogram' || types.get(base) === 'summary');
}

const metricNames = (expr: string): string[] => [...new Set(expr.match(/\bkeyward_[a-z0-9_]+\b/g) ?? [])];

interface Rule { alert?: string; expr?: string; labels?: { severity?: string }; annotations?: Record<string, string> }

void test('alerts.yml: valid rules for every required condition, each metric exists on a real server', () => {
  const doc = parse(readFileSync(`${ROOT}deploy/monitoring/alerts.yml`, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  assert.ok(rules.length >= 7);
  const types = exposed();
  for (const r of rules) {
    assert.match(r.alert ?? '', /^Keyward[A-Za-z]+$/, 'every rule is a named alert');
    assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity label`);
    assert.ok(r.annotations?.summary, `${r.alert}: summary`);
    const names = metricNames(r.expr ?? '');
    assert.ok(names.length > 0, `${r.alert}: uses a keyward metric`);
    for (const n of names) assert.ok(exists(n, types), `${r.alert}: metric ${n} is not in the server's /metrics output`);
  }
  const alerts = new Set(rules.map((r) => r.alert));
  for (const a of ['KeywardAuditVerificationFailure', 'KeywardSealed', 'KeywardFailedAuthSpike', 'KeywardRotationOverdue', 'KeywardCheckpointStale', 'KeywardKeyholderErrors', 'KeywardLatencySLO', 'KeywardHsmUnreachable', 'KeywardHsmErrors', 'KeywardAuditNotWitnessed', 'KeywardDirectoryNotWitnessed', 'KeywardDirectoryWitnessFailing', 'KeywardDirectoryHeadNotCosigned']) {
    assert.ok(alerts.has(a), `missing alert ${a}`);
  }
});

void test('grafana dashboard: every panel query uses metrics that exist on a real server', () => {
  const dash = JSON.parse(readFileSync(`${ROOT}deploy/monitoring/grafana-dashboard.json`, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const types = exposed();
  assert.ok(dash.panels.length > 0);
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, p.title);
    for (const t of p.targets) {
      const names = metricNames(t.expr);
      assert.ok(names.length > 0, `${p.title}: uses a keyward metric`);
      for (const n of names) assert.ok(exists(n, types), `${p.title}: metric ${n} is not in the server's /metrics output`);
    }
  }
});

void test('grafana dashboard and alerts cover HSM reachability and errors; a server without an HSM reports it as not configured', () => {
  const dash = JSON.parse(readFileSync(`${ROOT}deploy/monitoring/grafana-dashboard.json`, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  assert.match(exprs, /keyward_hsm_up/);
  assert.match(exprs, /keyward_hsm_errors_total/);
  const doc = parse(readFileSync(`${ROOT}deploy/monitoring/alerts.yml`, 'utf8')) as { groups: { rules: Rule[] }[] };
  const hsm = doc.groups.flatMap((g) => g.rules).find((r) => r.alert === 'KeywardHsmUnreachable');
  assert.match(hsm?.expr ?? '', /keyward_hsm_configured == 1 and keyward_hsm_up == 0/);
  assert.match(metricsText, /^keyward_hsm_configured 0$/m);
  assert.match(metricsText, /^keyward_hsm_up 0$/m);
});

void test('alerts: audit witness failures alert on the counter the server increments for a cosignature shortfall', () => {
  const doc = parse(readFileSync(`${ROOT}deploy/monitoring/alerts.yml`, 'utf8')) as { groups: { rules: Rule[] }[] };
  const w = doc.groups.flatMap((g) => g.rules).find((r) => r.alert === 'KeywardAuditNotWitnessed');
  assert.match(w?.expr ?? '', /keyward_audit_errors_total\{what="witness"\}/);
  assert.equal(w?.labels?.severity, 'warning');
  assert.equal(exposed().get('keyward_audit_errors_total'), 'counter');
  // The label the rule selects on is the one the server uses (server.ts: onShortfall).
  const serverSrc = readFileSync(`${ROOT}packages/server/src/server.ts`, 'utf8');
  assert.match(serverSrc, /auditErrors\.inc\(\{ what: 'witness'/);
});

void test('alerts and dashboard: the directory witness publisher is watched with the metrics and labels the server uses', () => {
  const doc = parse(readFileSync(`${ROOT}deploy/monitoring/alerts.yml`, 'utf8')) as { groups: { rules: Rule[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);
  const rule = (name: string) => rules.find((r) => r.alert === name)?.expr ?? '';
  assert.match(rule('KeywardDirectoryNotWitnessed'), /keyward_directory_witness_shortfall_total/);
  assert.match(rule('KeywardDirectoryWitnessFailing'), /keyward_directory_witness_cosign_total\{outcome="failed"\}.*unless.*\{outcome="cosigned"\}/);
  assert.match(rule('KeywardDirectoryHeadNotCosigned'), /keyward_directory_head_size > keyward_directory_head_cosigned_size.*keyward_directory_head_cosigned_timestamp_seconds.*keyward_directory_witness_quorum > 0/);
  assert.equal(rules.find((r) => r.alert === 'KeywardDirectoryHeadNotCosigned')?.labels?.severity, 'critical');
  const types = exposed();
  for (const [n, t] of [['keyward_directory_witness_cosign_total', 'counter'], ['keyward_directory_witness_shortfall_total', 'counter'], ['keyward_directory_head_size', 'gauge'], ['keyward_directory_head_cosigned_size', 'gauge'], ['keyward_directory_head_cosigned_timestamp_seconds', 'gauge'], ['keyward_directory_witness_quorum', 'gauge']] as const) {
    assert.equal(types.get(n), t, n);
  }
  // A dev server has no directory witnesses: k is 0, so the head alert cannot fire.
  assert.match(metricsText, /^keyward_directory_witness_quorum 0$/m);
  // The outcome labels the rules select on are the ones the server counts (api/metrics.ts: observeDirectoryRound).
  const src = readFileSync(`${ROOT}packages/server/src/api/metrics.ts`, 'utf8');
  assert.match(src, /outcome: 'cosigned'/);
  assert.match(src, /outcome: 'failed'/);
  const dash = JSON.parse(readFileSync(`${ROOT}deploy/monitoring/grafana-dashboard.json`, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  for (const n of ['keyward_directory_witness_cosign_total', 'keyward_directory_witness_shortfall_total', 'keyward_directory_head_cosigned_timestamp_seconds']) assert.ok(exprs.includes(n), `dashboard: ${n}`);
});

void test('metrics catalog: lists exactly the keyward_* metrics the server exposes', () => {
  const doc = readFileSync(`${ROOT}docs/operations/metrics.md`, 'utf8');
  const catalog = new Set([...doc.matchAll(/^\| `(keyward_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!));
  const types = exposed();
  const served = [...types.keys()].filter((n) => n.startsWith('keyward_'));
  for (const n of served) assert.ok(catalog.has(n), `docs/operations/metrics.md does not list ${n}`);
  for (const n of catalog) assert.ok(types.has(n), `the catalog lists ${n}, which the server does not expose`);
  // The sample lines carry the traffic above (a 401 is counted under its route).
  assert.match(metricsText, /^keyward_http_requests_total\{route="[^"]+",method="GET",status="401"\} \d+/m);
});
