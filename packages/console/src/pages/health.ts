/**
 * Health: GET /v1/sys/health (initialized, sealed, keyholder up/down,
 * version) and /metrics (Prometheus), polled every 5 s while the page is
 * open; request rates and mean latency are differences between two polls.
 */
import type { Page } from '../main.js';
import { ApiFailure, get, metricsText } from '../lib/api.js';
import { h, mark } from '../lib/dom.js';
import { parseMetrics, sum, type Sample } from '../lib/metrics.js';

interface Health { initialized: boolean; sealed: boolean; keyholder: 'up' | 'down'; version: string }

export const healthPage: Page = (main) => {
  const state = h('dl', { id: 'health-state', class: 'cards' });
  const rates = h('dl', { id: 'health-rates', class: 'cards' });
  const status = h('p', { role: 'status', class: 'muted' }, 'Loading…');
  main.append(
    h('h1', { tabindex: '-1' }, 'Health'),
    h('h2', {}, 'This node'), state,
    h('h2', {}, 'Traffic and audit'), rates,
    status,
    h('p', { class: 'muted' }, 'Only the node serving this page is shown: a list of nodes, keyholder and HSM details come with the multi-node and HSM work.'),
  );
  let last: { at: number; samples: Sample[] } | null = null;
  const card = (term: string, value: Node | string) => [h('div', { class: 'card' }, h('dt', {}, term), h('dd', {}, value))];

  const poll = async () => {
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
      last = { at: now, samples };
    } catch (e) {
      status.textContent = e instanceof ApiFailure ? `Health unavailable: ${e.message} (${e.code})` : String(e);
    }
  };
  void poll();
  const timer = window.setInterval(() => { void poll(); }, 5000);
  return () => window.clearInterval(timer);
};
