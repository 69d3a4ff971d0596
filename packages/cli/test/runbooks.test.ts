/**
 * The runbooks of docs/operations/ stay true: every fenced block tagged
 * `sh runbook` is run, with the real `keyward` command against a real server
 * on a temporary data directory, as one `bash -euo pipefail` script;
 * `start_service DIR` / `stop_service` run `keyward server` in the background
 * (docs/operations/README.md). Each runbook starts where the key ceremony
 * ends (a deployment created, unsealed, with an administrator's token): the
 * ceremony's blocks run once, in the first test, and the deployment they
 * leave is copied into each other runbook's directory, restarted and
 * unsealed there (RESUME), rather than made again for every runbook.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BIN, tempDir } from './helpers.js';

const OPS = fileURLToPath(new URL('../../../docs/operations/', import.meta.url));

/** The `sh runbook` blocks of a markdown file, in order. */
export function runbookBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh runbook\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const PRELUDE = String.raw`
set -euo pipefail
keyward() { node "$KEYWARD_BIN" "$@"; }
start_service() {
  local from=1
  if [ -f "$WORK/server.log" ]; then from=$(( $(wc -l < "$WORK/server.log") + 1 )); fi
  node "$KEYWARD_BIN" server --data "$1" --listen "127.0.0.1:$KEYWARD_PORT" >>"$WORK/server.log" 2>&1 &
  echo $! > "$WORK/server.pid"
  # Its "listening" line first (a grep, not a node process per poll), then asked as a client would.
  for _ in $(seq 600); do
    if awk -v from="$from" 'NR >= from && /keyward server listening/ { found = 1 } END { exit !found }' "$WORK/server.log" && keyward status >/dev/null 2>&1; then return 0; fi
    kill -0 "$(cat "$WORK/server.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start" >&2; cat "$WORK/server.log" >&2; return 1
}
stop_service() {
  local pid; pid=$(cat "$WORK/server.pid")
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
trap 'if [ -f "$WORK/server.pid" ]; then kill "$(cat "$WORK/server.pid")" 2>/dev/null || true; fi' EXIT
cd "$WORK"
`;

function run(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

const ceremony = runbookBlocks(readFileSync(`${OPS}key-ceremony.md`, 'utf8'));

/**
 * Where the ceremony leaves the operator, from its copied directory: the server
 * running and unsealed by two custodians, the administrator's token in use and
 * INIT_TOKEN_ID set (key-ceremony.md, "Unseal" and "First administrator").
 */
const RESUME = String.raw`
start_service "$KEYWARD_DATA"
keyward unseal --share custodian-1/share-1.kw.txt -i custodian-1/custodian.key >/dev/null
keyward unseal --share custodian-3/share-3.kw.txt -i custodian-3/custodian.key >/dev/null
export KEYWARD_TOKEN_FILE=alice.token
INIT_TOKEN_ID=$(grep -o '"tokenId": "[^"]*"' init.json | cut -d'"' -f4)
`;

/** The ceremony's directory, with the server stopped: made by the key-ceremony test. */
let ceremonyDir: string | null = null;
after(() => { if (ceremonyDir) rmSync(ceremonyDir, { recursive: true, force: true }); });

void test('the key ceremony has runbook blocks', () => {
  assert.ok(ceremony.length >= 5);
});

/** Runs `script` (after the prelude) in `work`, with the runbooks' environment. */
async function runIn(work: string, script: string): Promise<{ code: number | null; out: string }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS' && !k.startsWith('KEYWARD_')) env[k] = v;
  const port = await freePort();
  Object.assign(env, {
    WORK: work, KEYWARD_BIN: BIN, KEYWARD_PORT: String(port), KEYWARD_ADDR: `http://127.0.0.1:${port}`,
    KEYWARD_DATA: `${work}/var/lib/keyward`,
  });
  return run(PRELUDE + script, env);
}

// The ceremony first: every other runbook starts from the deployment it leaves.
const files = readdirSync(OPS).filter((f) => f.endsWith('.md')).sort((a, b) => Number(b === 'key-ceremony.md') - Number(a === 'key-ceremony.md') || a.localeCompare(b));
for (const file of files) {
  const text = readFileSync(`${OPS}${file}`, 'utf8');
  const blocks = runbookBlocks(text);
  if (blocks.length === 0) {
    void test(`${file}: no executable blocks, so it must say what is not supported yet`, () => {
      assert.ok(['README.md', 'metrics.md'].includes(file) || /\*\*Not yet supported\.\*\*.*\bissue #\d+/s.test(text), `${file} describes no tested procedure and is not a "not yet supported" stub`);
    });
    continue;
  }
  void test(`runbook ${file}: every documented command works on a real server`, async () => {
    if (file === 'key-ceremony.md') {
      const work = mkdtempSync(join(tmpdir(), 'keyward-ceremony-'));
      const r = await runIn(work, 'mkdir -p "$(dirname "$KEYWARD_DATA")"\n' + blocks.join('\n') + '\nstop_service\nrm -f "$WORK/server.pid"\n');
      assert.equal(r.code, 0, `${file} failed:\n${r.out.slice(-1200)}`);
      ceremonyDir = work;
      return;
    }
    assert.ok(ceremonyDir, 'the key ceremony runbook ran first and passed');
    const t = tempDir();
    try {
      cpSync(ceremonyDir, t.dir, { recursive: true });
      const r = await runIn(t.dir, RESUME + blocks.join('\n'));
      assert.equal(r.code, 0, `${file} failed:\n${r.out.slice(-1200)}`);
    } finally {
      t.cleanup();
    }
  });
}
