/**
 * The reference pipeline (examples/pipeline) as a user runs it —
 * `npm run example:pipeline` — on this machine's NATS JetStream, PostgreSQL
 * and a dev-mode key service. The canary plaintexts must appear only in the
 * analyst's lines of the output; the stream's stored messages, the database
 * rows and the key service's logs must hold none; every record arrives.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { connect } from 'nats';
import pg from 'pg';
import { canary, findCanaries, NATS_URL, PG_BASE, REPO } from './helpers.js';

void test('npm run example:pipeline: only the analyst sees the records', async () => {
  const marker = canary('pipeline');
  const r = spawnSync('npm', ['run', '-s', 'example:pipeline'], { cwd: REPO, env: { ...process.env, PIPELINE_CANARY: marker, PIPELINE_KEEP: '1' }, timeout: 180_000, maxBuffer: 1 << 24 });
  const out = r.stdout.toString();
  assert.equal(r.status, 0, `${out}\n${r.stderr.toString()}`);
  const result = JSON.parse(/^PIPELINE_RESULT (.*)$/m.exec(out)![1]!) as { stream: string; database: string; rows: number; sent: number; keyServiceLog: string };
  try {
    assert.equal(result.rows, result.sent);
    const lines = out.split('\n');
    const analystLines = lines.filter((l) => l.startsWith('[analyst]'));
    assert.equal(analystLines.length, result.sent);
    for (let i = 0; i < result.sent; i++) assert.ok(analystLines.some((l) => l.includes(`${marker}-patient-${i}: ${marker}-dx-${i}`)), `analyst opened record ${i}`);
    for (const l of lines.filter((x) => !x.startsWith('[analyst]'))) assert.ok(!l.includes(marker), `canary outside the analyst's view: ${l.slice(0, 80)}`);
    assert.ok(lines.some((l) => l.startsWith('[NATS stream')) && lines.some((l) => l.startsWith('[PostgreSQL results]')));

    // What the middle stored, read directly.
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(result.stream);
    assert.equal(info.state.messages, result.sent);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      assert.deepEqual(findCanaries((await jsm.streams.getMessage(result.stream, { seq })).data, [marker]), []);
    }
    await jsm.streams.delete(result.stream);
    await nc.drain();
    const db = new pg.Client({ ...PG_BASE, database: result.database });
    await db.connect();
    const { rows } = await db.query<{ t: string }>('SELECT results::text AS t FROM results');
    assert.equal(rows.length, result.sent);
    assert.deepEqual(findCanaries(rows.map((x) => x.t).join('\n'), [marker]), []);
    await db.end();
    const logs = readFileSync(result.keyServiceLog, 'utf8');
    assert.ok(logs.includes('/v1/data/pipeline/events/unwrap'), 'the worker opened through the key service');
    assert.deepEqual(findCanaries(logs, [marker]), []);
  } finally {
    const a = new pg.Client({ ...PG_BASE, database: 'postgres' });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS "${result.database}" WITH (FORCE)`);
    await a.end();
    rmSync(result.keyServiceLog, { force: true });
  }
});
