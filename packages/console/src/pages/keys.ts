/**
 * Key inventory: every namespace's keys (GET /v1/namespaces, /v1/keys/{ns}),
 * filterable by text, namespace, type and "overdue only"; rotation periods and
 * the keys past them (GET /v1/rotation/overdue); a key's versions and states
 * on demand (GET /v1/keys/{ns}/{name}). Every one of these reads is audited
 * by the server. A version's actions (disable, enable, schedule deletion,
 * cancel deletion, destroy) are the CLI's routes; destroy and schedule
 * deletion go with a step-up, and when a quorum rule covers them the page
 * offers to ask for approval.
 */
import type { Page } from '../main.js';
import { ApiFailure, get, post, send } from '../lib/api.js';
import { barChart, bucketize } from '../lib/chart.js';
import { duration, h, mark, when } from '../lib/dom.js';
import { sensitive } from '../lib/step-up.js';

interface KeyView {
  ns: string; name: string; type: string; created: string; rotation_period_seconds: number | null;
  min_decryption_version: number; latest_version: number;
  versions?: { version: number; state: string; created: string; deletion_at: string | null; destroyed_at: string | null }[];
  origin?: string;
}
interface Overdue { ns: string; name: string; due_since: string; latest_created: string }

const STATE_TEXT: Record<string, [ 'ok' | 'bad' | 'warn' | 'info', string ]> = {
  enabled: ['ok', 'enabled'], disabled: ['warn', 'disabled'], scheduled_for_deletion: ['warn', 'scheduled for deletion'], destroyed: ['bad', 'destroyed'],
};

export const keysPage: Page = (main) => {
  const status = h('p', { role: 'status', class: 'muted' }, 'Loading keys…');
  const search = h('input', { id: 'key-search', type: 'search', placeholder: 'name, namespace or type', autocomplete: 'off' });
  const nsSelect = h('select', { id: 'key-ns' }, h('option', { value: '' }, 'All namespaces'));
  const overdueOnly = h('input', { id: 'key-overdue', type: 'checkbox' });
  const tbody = h('tbody');
  const table = h('table', { id: 'keys-table' },
    h('caption', { class: 'sr-only' }, 'Keys'),
    h('thead', {}, h('tr', {}, ...['Namespace', 'Name', 'Type', 'Latest version', 'Rotation', 'Created', ''].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  main.append(
    h('h1', { tabindex: '-1' }, 'Keys'),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'key-search' }, 'Search'), search),
      h('div', { class: 'field' }, h('label', { for: 'key-ns' }, 'Namespace'), nsSelect),
      h('div', { class: 'field check' }, overdueOnly, h('label', { for: 'key-overdue' }, 'Overdue rotations only'))),
    status,
    h('div', { class: 'table-wrap' }, table),
  );

  let keys: KeyView[] = [];
  const overdue = new Map<string, Overdue>();
  const ref = (k: { ns: string; name: string }) => `${k.ns}/${k.name}`;

  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = keys.filter((k) =>
      (nsSelect.value === '' || k.ns === nsSelect.value) &&
      (!overdueOnly.checked || overdue.has(ref(k))) &&
      (q === '' || `${k.ns}/${k.name} ${k.type}`.toLowerCase().includes(q)));
    tbody.replaceChildren(...shown.map(row));
    status.textContent = `${shown.length} of ${keys.length} keys${overdue.size ? ` · ${overdue.size} overdue for rotation` : ''}`;
  };

  const row = (k: KeyView) => {
    const o = overdue.get(ref(k));
    const detailId = `versions-${k.ns}-${k.name}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const detail = h('tr', { id: detailId, hidden: true, class: 'detail' }, h('td', { colspan: '7' }));
    const toggle = h('button', { type: 'button', 'aria-expanded': 'false', 'aria-controls': detailId }, 'Versions');
    toggle.addEventListener('click', () => {
      const open = toggle.getAttribute('aria-expanded') === 'true';
      toggle.setAttribute('aria-expanded', String(!open));
      detail.hidden = open;
      if (!open) void loadVersions(k, detail.firstElementChild as HTMLTableCellElement);
    });
    const rotation = k.rotation_period_seconds === null ? h('span', { class: 'muted' }, 'manual')
      : h('span', {}, `every ${duration(k.rotation_period_seconds)} `, o ? mark('bad', `overdue since ${when(o.due_since)}`) : null);
    const tr = h('tr', { class: o ? 'overdue' : null, 'data-key': ref(k) },
      h('td', {}, k.ns), h('th', { scope: 'row' }, k.name), h('td', {}, k.type), h('td', {}, `v${k.latest_version}`),
      h('td', {}, rotation), h('td', {}, when(k.created)), h('td', {}, toggle));
    const frag = document.createDocumentFragment();
    frag.append(tr, detail);
    return frag;
  };

  // Usage over time: the newest audit events (GET /v1/audit/events, the public log), loaded once per page.
  interface Ev { time: string; ns: string | null; op: string; outcome: string; target: { key?: string } }
  let recent: Promise<Ev[]> | null = null;
  const recentEvents = () => recent ??= (async () => {
    const { size } = await get<{ size: number }>('/v1/audit/checkpoint');
    const from = Math.max(0, size - 900);
    const r = await get<{ events: { event: string }[] }>(`/v1/audit/events?from=${from}&to=${from + 1000}`);
    return r.events.map((e) => JSON.parse(e.event) as Ev);
  })();
  const usage = async (k: KeyView, slot: HTMLElement) => {
    try {
      const mine = (await recentEvents()).filter((e) => e.ns === k.ns && e.target.key === k.name && !e.op.endsWith('.read'));
      const id = `usage-${k.ns}-${k.name}`.replace(/[^A-Za-z0-9_-]/g, '_');
      slot.replaceChildren(barChart(id, `Operations on ${ref(k)} per hour, last 24 hours (from the newest 1000 audit events)`,
        bucketize(mine, 24, 3600_000), (d) => `${d.toISOString().slice(11, 16)}Z`));
    } catch (e) {
      slot.replaceChildren(h('span', { class: 'muted' }, `No usage chart: ${e instanceof ApiFailure ? e.code : String(e)}`));
    }
  };

  const loadVersions = async (k: KeyView, cell: HTMLTableCellElement) => {
    cell.replaceChildren(h('span', { class: 'muted' }, 'Loading versions…'));
    try {
      const full = await get<KeyView>(`/v1/keys/${encodeURIComponent(k.ns)}/${encodeURIComponent(k.name)}`);
      const versions = full.versions ?? [];
      const latest = versions.find((v) => v.version === full.latest_version);
      const next = full.rotation_period_seconds !== null && latest ? new Date(new Date(latest.created).getTime() + full.rotation_period_seconds * 1000).toISOString() : null;
      const base = `/v1/keys/${encodeURIComponent(k.ns)}/${encodeURIComponent(k.name)}`;
      const result = h('p', { role: 'status', class: 'action-result' });
      // Changes go through the public API like any client; sensitive ones with a step-up (lib/step-up.ts).
      // A request a quorum rule covers answers KW_QUORUM_REQUIRED: offer to ask the approvers (POST
      // /v1/approvals with the very same request); the requester executes it from the Approvals page.
      const act = (label: string, run: () => Promise<unknown>, request?: { method: 'POST'; path: string; body?: Record<string, unknown> }) => async () => {
        result.setAttribute('role', 'status');
        result.textContent = `${label}…`;
        try {
          await run();
          await loadVersions(k, cell);
          cell.querySelector('.action-result')!.textContent = `${label}: done.`;
        } catch (e) {
          result.setAttribute('role', 'alert');
          result.textContent = e instanceof ApiFailure ? `${label} refused: ${e.message} (${e.code})` : `${label}: ${String(e)}`;
          if (request && e instanceof ApiFailure && e.code === 'KW_QUORUM_REQUIRED') {
            result.append(' ', h('button', { type: 'button', class: 'ask-approval', onclick: () => {
              void (async () => {
                try {
                  const r = await post<{ id: string }>('/v1/approvals', request);
                  result.setAttribute('role', 'status');
                  result.replaceChildren(`Approval request ${r.id} created: the approvers see it in their Approvals inbox; once approved, execute it from yours.`);
                  result.dataset.approval = r.id;
                } catch (e2) {
                  result.textContent = e2 instanceof ApiFailure ? `Asking for approval refused: ${e2.message} (${e2.code})` : String(e2);
                }
              })();
            } }, 'Ask for approval'));
          }
        }
      };
      const path = (v: number, action: string) => `${base}/versions/${v}/${action}`;
      const button = (label: string, aria: string, run: () => void) => h('button', { type: 'button', 'aria-label': aria, onclick: run }, label);
      /** The actions a version in `state` offers: the same routes as the CLI, sensitive ones with a step-up. */
      const actions = (v: number, state: string) => {
        const name = `${ref(k)} v${v}`;
        const out: HTMLButtonElement[] = [];
        if (state === 'enabled') out.push(button('Disable', `Disable v${v}`, () => { void act(`Disable ${name}`, () => send('POST', path(v, 'disable')))(); }));
        if (state === 'disabled') out.push(button('Enable', `Enable v${v}`, () => { void act(`Enable ${name}`, () => send('POST', path(v, 'enable')))(); }));
        if (state === 'enabled' || state === 'disabled') {
          out.push(button('Schedule deletion', `Schedule deletion of v${v} in 7 days`, () => {
            void act(`Schedule deletion of ${name}`, () => sensitive('POST', path(v, 'schedule-deletion'), { days: 7 }), { method: 'POST', path: path(v, 'schedule-deletion'), body: { days: 7 } })();
          }));
        }
        if (state === 'scheduled_for_deletion') {
          out.push(button('Cancel deletion', `Cancel the deletion of v${v}`, () => { void act(`Cancel the deletion of ${name}`, () => send('POST', path(v, 'cancel-deletion')))(); }));
          out.push(button('Destroy now', `Destroy v${v} now`, () => { void act(`Destroy ${name}`, () => sensitive('POST', path(v, 'destroy')), { method: 'POST', path: path(v, 'destroy') })(); }));
        }
        return h('div', { class: 'row-actions' }, ...out);
      };
      const usageSlot = h('div', { class: 'usage' }, h('span', { class: 'muted' }, 'Loading usage…'));
      const rotate = h('button', { type: 'button', class: 'rotate', onclick: () => { void act(`Rotate ${ref(k)}`, () => send('POST', `${base}/rotate`))(); } }, `Rotate ${k.name}`);
      cell.replaceChildren(
        h('p', {}, `Origin: ${full.origin ?? 'generated'} · minimum decryption version v${full.min_decryption_version}`,
          next ? ` · next rotation due ${when(next)}` : ''),
        h('div', { class: 'actions' }, rotate),
        result,
        h('table', { class: 'versions' },
          h('caption', { class: 'sr-only' }, `Versions of ${ref(k)}`),
          h('thead', {}, h('tr', {}, ...['Version', 'State', 'Created', 'Deletion', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...versions.slice().reverse().map((v) => {
            const [kind, text] = STATE_TEXT[v.state] ?? ['info', v.state];
            return h('tr', { 'data-version': v.version, 'data-state': v.state }, h('th', { scope: 'row' }, `v${v.version}`), h('td', {}, mark(kind, text)), h('td', {}, when(v.created)),
              h('td', {}, v.destroyed_at ? `destroyed ${when(v.destroyed_at)}` : v.deletion_at ? `due ${when(v.deletion_at)}` : '—'), h('td', {}, actions(v.version, v.state)));
          }))),
        usageSlot,
      );
      recent = null; // after an action, the chart shows the new events
      void usage(k, usageSlot);
    } catch (e) {
      cell.replaceChildren(h('span', { role: 'alert', class: 'error' }, e instanceof ApiFailure ? `${e.message} (${e.code})` : String(e)));
    }
  };

  for (const el of [search, nsSelect, overdueOnly]) el.addEventListener('input', draw);

  void (async () => {
    try {
      const { namespaces } = await get<{ namespaces: { name: string }[] }>('/v1/namespaces');
      const lists = await Promise.all(namespaces.map((n) => get<{ keys: KeyView[] }>(`/v1/keys/${encodeURIComponent(n.name)}`)));
      keys = lists.flatMap((l) => l.keys).sort((a, b) => ref(a).localeCompare(ref(b)));
      for (const o of (await get<{ keys: Overdue[] }>('/v1/rotation/overdue')).keys) overdue.set(ref(o), o);
      nsSelect.append(...namespaces.filter((n) => keys.some((k) => k.ns === n.name)).map((n) => h('option', { value: n.name }, n.name)));
      draw();
    } catch (e) {
      status.setAttribute('role', 'alert');
      status.textContent = e instanceof ApiFailure ? `Could not load keys: ${e.message} (${e.code})` : String(e);
    }
  })();
};
