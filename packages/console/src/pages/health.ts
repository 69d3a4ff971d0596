/**
 * Health: GET /v1/sys/health (initialized, sealed, keyholder up/down,
 * version), HSM state, the cluster node list (GET /v1/sys/nodes) and /metrics (Prometheus), polled every 5 s while the page is
 * open; request rates and mean latency are differences between two polls.
 */
import type { Page } from '../main.js';
import { ApiFailure, get, metricsText } from '../lib/api.js';
import { h, mark } from '../lib/dom.js';
import { parseMetrics, routeStats, sum, type Sample } from '../lib/metrics.js';

interface Health { initialized: boolean; sealed: boolean; keyholder: 'up' | 'down'; version: string }
interface NodeRow { id: string; version: string; started_at: string; last_seen: string; sealed: boolean; keyholder: 'up' | 'down'; hsm: string | null; stale: boolean }

export const healthPage: Page = (main) => {
  const state = h('dl', { id: 'health-state', class: 'cards' });
  const rates = h('dl', { id: 'health-rates', class: 'cards' });
  const status = h('p', { role: 'status', class: 'muted' }, 'Loading…');
  // Per route family, from keyward_http_request_duration_seconds between two polls (buckets interpolated like histogram_quantile).
  const routesBody = h('tbody');
  const routesStatus = h('p', { class: 'muted', id: 'health-routes-status' }, 'Rates appear after the second poll (5 s).');
  const ms = (v: number | null) => v === null ? '—' : `${(v * 1000).toFixed(1)} ms`;
  // GET /v1/sys/nodes (admin): every node's heartbeat in the shared store; stale after 3 missed heartbeats.
  const nodesBody = h('tbody');
  const nodesStatus = h('p', { class: 'muted', id: 'health-nodes-status' }, 'Loading the node list…');
  const ago = (iso: string) => `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))} s ago`;
  const pollNodes = async () => {
    try {
      const { nodes } = await get<{ nodes: NodeRow[] }>('/v1/sys/nodes');
      nodesBody.replaceChildren(...nodes.map((n) => h('tr', { 'data-node': n.id, 'data-stale': String(n.stale) },
        h('th', { scope: 'row', class: 'mono' }, n.id), h('td', {}, n.version), h('td', {}, new Date(n.started_at).toLocaleString()),
        h('td', {}, n.stale ? mark('bad', `stale, ${ago(n.last_seen)}`) : mark('ok', ago(n.last_seen))),
        h('td', {}, n.sealed ? mark('bad', 'sealed') : mark('ok', 'unsealed')),
        h('td', {}, n.keyholder === 'up' ? mark('ok', 'up') : mark('bad', 'down')),
        h('td', {}, n.hsm === null ? '—' : n.hsm === 'available' ? mark('ok', n.hsm) : mark('warn', n.hsm)))));
      nodesStatus.textContent = `${nodes.length} node${nodes.length === 1 ? '' : 's'}; this page is served by ${location.host}.`;
    } catch (e) {
      nodesStatus.textContent = e instanceof ApiFailure ? `Node list unavailable: ${e.message} (${e.code})` : String(e);
    }
  };
  main.append(
    h('h1', { tabindex: '-1' }, 'Health'),
    h('h2', {}, 'This node'), state,
    h('h2', {}, 'Traffic and audit'), rates,
    h('h2', {}, 'Requests by route'), routesStatus,
    h('div', { class: 'table-wrap' }, h('table', { id: 'health-routes' },
      h('caption', { class: 'sr-only' }, 'Request rate and latency percentiles by route family, over the last interval'),
      h('thead', {}, h('tr', {}, ...['Route', 'Requests /s', 'p50', 'p99'].map((t) => h('th', { scope: 'col' }, t)))), routesBody)),
    status,
    h('h2', {}, 'Nodes'), nodesStatus,
    h('div', { class: 'table-wrap' }, h('table', { id: 'health-nodes' },
      h('caption', { class: 'sr-only' }, 'Server nodes sharing this store'),
      h('thead', {}, h('tr', {}, ...['Node', 'Version', 'Started', 'Last seen', 'Seal', 'Keyholder', 'HSM'].map((t) => h('th', { scope: 'col' }, t)))), nodesBody)),
  );
  let last: { at: number; samples: Sample[] } | null = null;
  const card = (term: string, value: Node | string) => [h('div', { class: 'card' }, h('dt', {}, term), h('dd', {}, value))];

  const poll = async () => {
    void pollNodes();
    try {
      const [hl, text] = await Promise.all([get<Health>('/v1/sys/health'), metricsText()]);
      const samples = parseMetrics(text);
      const now = Date.now();
      state.replaceChildren(
        ...card('Node', h('span', { id: 'health-node' }, location.host)),
        ...card('Version', hl.version),
        ...card('Keyholder', hl.keyholder === 'up' ? mark('ok', 'up') : mark('bad', 'down')),
        ...card('Initialized', hl.initialized ? mark('ok', 'yes') : mark('warn', 'no')),
        ...card('Seal', h('span', { id: 'health-sealed' }, hl.sealed ? mark('bad', 'sealed') : mark('ok', 'unsealed'))),
        // HSM-wrapped mode (docs/hsm.md), from /metrics: configured, reachable, failures by code.
        ...card('HSM', h('span', { id: 'health-hsm' }, sum(samples, 'keyward_hsm_configured') === 0 ? mark('info', 'not configured (master key in the keyholder)')
          : sum(samples, 'keyward_hsm_up') === 1 ? mark('ok', 'up') : mark('bad', 'unreachable'))),
        ...card('HSM errors', String(sum(samples, 'keyward_hsm_errors_total'))),
      );
      const req = (s: Sample[]) => sum(s, 'keyward_http_requests_total');
      const err = (s: Sample[]) => sum(s, 'keyward_http_requests_total', (l) => (l.status ?? '').startsWith('5'));
      const latSum = (s: Sample[]) => sum(s, 'keyward_http_request_duration_seconds_sum');
      const latCount = (s: Sample[]) => sum(s, 'keyward_http_request_duration_seconds_count');
      let rate = '…', errRate = '…', latency = '…';
      if (last) {
        const dt = (now - last.at) / 1000;
        rate = `${((req(samples) - req(last.samples)) / dt).toFixed(2)} /s`;
        errRate = `${((err(samples) - err(last.samples)) / dt).toFixed(2)} /s`;
        const dc = latCount(samples) - latCount(last.samples);
        latency = dc > 0 ? `${(((latSum(samples) - latSum(last.samples)) / dc) * 1000).toFixed(1)} ms` : '—';
      }
      const cpTime = sum(samples, 'keyward_audit_checkpoint_timestamp_seconds');
      const overdue = sum(samples, 'keyward_keys_rotation_overdue');
      rates.replaceChildren(
        ...card('Requests', h('span', { id: 'health-rate' }, rate)),
        ...card('Server errors (5xx)', errRate),
        ...card('Mean latency', latency),
        ...card('Requests since start', String(req(samples))),
        ...card('Audit events', String(sum(samples, 'keyward_audit_events'))),
        ...card('Latest checkpoint', cpTime > 0 ? `${sum(samples, 'keyward_audit_checkpoint_size')} events, ${Math.round(now / 1000 - cpTime)} s ago` : 'none yet'),
        ...card('Keys overdue for rotation', overdue > 0 ? mark('warn', String(overdue)) : mark('ok', '0')),
        ...card('Keyholder errors', String(sum(samples, 'keyward_keyholder_errors_total'))),
      );
      status.textContent = `Updated ${new Date(now).toLocaleTimeString()}; refreshes every 5 s.`;
      if (last) {
        const stats = routeStats(last.samples, samples, (now - last.at) / 1000);
        routesBody.replaceChildren(...stats.map((r) => h('tr', { 'data-family': r.family },
          h('th', { scope: 'row', class: 'mono' }, r.family), h('td', {}, r.rate.toFixed(2)), h('td', {}, ms(r.p50)), h('td', {}, ms(r.p99)))));
        routesStatus.textContent = stats.length === 0 ? 'No requests in the last interval.' : 'Over the last interval; percentiles are interpolated inside the histogram buckets (1, 5, 10, 50, 100, 500 ms, 1 s, 5 s).';
      }
      last = { at: now, samples };
    } catch (e) {
      status.textContent = e instanceof ApiFailure ? `Health unavailable: ${e.message} (${e.code})` : String(e);
    }
  };
  void poll();
  const timer = window.setInterval(() => { void poll(); }, 5000);
  return () => window.clearInterval(timer);
};
