/**
 * The reference pipeline (examples/pipeline) as a user runs it —
 * `npm run example:pipeline` — on this machine's NATS JetStream, PostgreSQL
 * and a dev-mode key service with the directory. The canary plaintexts must
 * appear only in the analyst's lines of the output; the stream's stored
 * messages, the database rows and the key service's logs must hold none;
 * every record arrives. The analyst is `user:analyst` of the directory with
 * two devices: after the phone is revoked, the records processed later do not
 * open with the phone's key (a typed error) while the laptop opens them all;
 * the records from before stay openable by both.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { connect } from 'nats';
import pg from 'pg';
import { canary, findCanaries, NATS_URL, PG_BASE, REPO } from './helpers.js';

void test('npm run example:pipeline: only the analyst\'s current devices see the records', async () => {
  const marker = canary('pipeline');
  const r = spawnSync('npm', ['run', '-s', 'example:pipeline'], { cwd: REPO, env: { ...process.env, PIPELINE_CANARY: marker, PIPELINE_KEEP: '1' }, timeout: 180_000, maxBuffer: 1 << 24 });
  const out = r.stdout.toString();
  assert.equal(r.status, 0, `${out}\n${r.stderr.toString()}`);
  const result = JSON.parse(/^PIPELINE_RESULT (.*)$/m.exec(out)![1]!) as { stream: string; database: string; rows: number; sent: number; before: string[]; refused: Record<'laptop' | 'phone', Record<string, string>>; keyServiceLog: string };
  try {
    assert.equal(result.rows, result.sent);
    const lines = out.split('\n');
    const opened = (device: string) => lines.filter((l) => l.startsWith(`[analyst ${device}]`));
    // The laptop (a current device) opens every record.
    assert.equal(opened('laptop').length, result.sent);
    assert.deepEqual(result.refused.laptop, {});
    for (let i = 0; i < result.sent; i++) assert.ok(opened('laptop').some((l) => l.startsWith(`[analyst laptop] rec-${i}: ${marker}-patient-${i}: ${marker}-dx-${i}`)), `laptop opened record ${i}`);
    // The phone, revoked halfway: the records from before open, the later ones are refused with a typed error.
    assert.deepEqual(result.before, ['rec-0', 'rec-1']);
    const after = ['rec-2', 'rec-3'];
    assert.deepEqual(opened('phone').map((l) => /^\[analyst phone\] (rec-\d+): /.exec(l)?.[1]), result.before);
    for (const id of result.before) assert.ok(opened('phone').some((l) => l.startsWith(`[analyst phone] ${id}: ${marker}-patient-${id.slice(4)}`)));
    assert.deepEqual(result.refused.phone, Object.fromEntries(after.map((id) => [id, 'KW_INT_OPEN_FAILED'])));
    assert.ok(lines.some((l) => l.startsWith('[directory] the laptop revoked the phone; devices now: laptop')));
    for (const l of lines.filter((x) => !x.startsWith('[analyst '))) assert.ok(!l.includes(marker), `canary outside the analyst's view: ${l.slice(0, 80)}`);
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
