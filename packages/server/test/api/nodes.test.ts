/** GET /v1/sys/nodes (issue #9): each node's heartbeat in the store's meta table; stale after 3 missed intervals; admin only. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NODE_HEARTBEAT_MS } from '../../src/api/nodes.js';
import { call, enrollAdmin, newServer, unsealAll } from './helpers.js';

void describe('sys/nodes', () => {
  void test('lists this node (version, unsealed after its next heartbeat), marks a silent node stale, needs an admin token', async () => {
    const s = await newServer();
    try {
      const init = await s.initialize({ shares: 3, threshold: 2 });
      await unsealAll(s, init.shares.slice(0, 2));
      const root = await enrollAdmin(s, init.rootToken);
      assert.equal((await call(s, 'GET', '/v1/sys/nodes')).status, 401);
      const api = await call(s, 'GET', '/v1/openapi.json');
      assert.ok(api.body.paths['/v1/sys/nodes']?.get, 'GET /v1/sys/nodes is in the OpenAPI document');
      const t = await call(s, 'POST', '/v1/tokens', { token: root, body: { principal: 'svc', ns: 'app', roles: ['w'] } });
      const denied = await call(s, 'GET', '/v1/sys/nodes', { token: t.body.token });
      assert.deepEqual([denied.status, denied.body.error.code], [403, 'KW_FORBIDDEN']);

      const health = await call(s, 'GET', '/v1/sys/health');
      // A node that stopped beating 4 intervals ago (another server, now gone).
      const old = new Date(Date.now() - 4 * NODE_HEARTBEAT_MS).toISOString();
      await s.store.setMeta('node.gone-1', JSON.stringify({ id: 'gone-1', version: '0.0.1', started_at: old, last_seen: old, sealed: false, keyholder: 'up', hsm: null }));
      const index = JSON.parse((await s.store.getMeta('nodes')) ?? '[]') as string[];
      await s.store.setMeta('nodes', JSON.stringify([...index, 'gone-1']));

      // The first heartbeat was written at start (sealed); the next one after unseal says unsealed.
      let mine: Record<string, unknown> | undefined;
      const until = Date.now() + 2 * NODE_HEARTBEAT_MS;
      for (;;) {
        const r = await call(s, 'GET', '/v1/sys/nodes', { token: root });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const nodes = r.body.nodes as Record<string, unknown>[];
        assert.equal(nodes.length, 2);
        const gone = nodes.find((n) => n.id === 'gone-1');
        assert.deepEqual([gone?.stale, gone?.version], [true, '0.0.1']);
        mine = nodes.find((n) => n.id !== 'gone-1');
        if (mine?.sealed === false || Date.now() > until) break;
        await new Promise((res) => setTimeout(res, 250));
      }
      assert.ok(mine);
      assert.deepEqual([mine.sealed, mine.keyholder, mine.stale, mine.version, mine.hsm], [false, 'up', false, health.body.version, null]);
      assert.ok(Date.now() - Date.parse(String(mine.last_seen)) < 2 * NODE_HEARTBEAT_MS);
      assert.ok(Date.parse(String(mine.started_at)) <= Date.parse(String(mine.last_seen)));
    } finally {
      await s.close();
    }
  });
});
