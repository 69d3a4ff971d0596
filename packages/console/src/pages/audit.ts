/**
 * Audit trail, verified in this browser: the latest signed checkpoint is
 * checked against the log's public key (pinned here, or as served by
 * GET /v1/audit/verifier-key — the page says which), then every event shown
 * gets its inclusion proof checked against that checkpoint's root
 * (lib/audit-verify.ts). Pages of 50, newest first; filter by op and
 * principal within the events loaded (Load older events widens the window).
 */
import type { Page } from '../main.js';
import { ApiFailure, get } from '../lib/api.js';
import { checkInclusion, verifyCheckpoint, type InclusionProof, type Verdict, type VerifiedCheckpoint } from '../lib/audit-verify.js';
import { h, mark, when } from '../lib/dom.js';

const PIN_KEY = 'keyward.console.audit-verifier-key'; // a public key, not a credential
const PAGE = 50;
const WINDOW = 500;

interface EventRow { index: number; text: string; op: string; principal: string | null; outcome: string; ns: string | null; time: string; target: string; code: string | null }

function parseEvent(index: number, text: string): EventRow {
  try {
    const e = JSON.parse(text) as { op?: string; principal?: string | null; outcome?: string; ns?: string | null; time?: string; target?: { key?: string; version?: number }; code?: string | null };
    const target = e.target?.key ? `${e.target.key}${e.target.version !== undefined ? ` v${e.target.version}` : ''}` : '';
    return { index, text, op: e.op ?? '?', principal: e.principal ?? null, outcome: e.outcome ?? '?', ns: e.ns ?? null, time: e.time ?? '', target, code: e.code ?? null };
  } catch {
    return { index, text, op: '(unparsable)', principal: null, outcome: '?', ns: null, time: '', target: '', code: null };
  }
}

export const auditPage: Page = (main) => {
  let alive = true;
  const keyStatus = h('div', { id: 'audit-key', class: 'panel' }, h('p', { class: 'muted' }, 'Fetching the log key…'));
  const cpStatus = h('p', { id: 'audit-checkpoint', role: 'status' }, 'Checking the signed checkpoint…');
  const opFilter = h('select', { id: 'audit-op' }, h('option', { value: '' }, 'Any operation'));
  const principalFilter = h('input', { id: 'audit-principal', type: 'search', autocomplete: 'off', placeholder: 'principal id' });
  const listStatus = h('p', { role: 'status', class: 'muted' });
  const tbody = h('tbody');
  const prev = h('button', { type: 'button', id: 'audit-newer' }, 'Newer');
  const next = h('button', { type: 'button', id: 'audit-older' }, 'Older');
  const more = h('button', { type: 'button', id: 'audit-more' }, 'Load older events');
  main.append(
    h('h1', { tabindex: '-1' }, 'Audit trail'),
    keyStatus,
    cpStatus,
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'audit-op' }, 'Operation'), opFilter),
      h('div', { class: 'field' }, h('label', { for: 'audit-principal' }, 'Principal'), principalFilter)),
    listStatus,
    h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table' },
      h('caption', { class: 'sr-only' }, 'Audit events, newest first'),
      h('thead', {}, h('tr', {}, ...['#', 'Time', 'Operation', 'Principal', 'Target', 'Outcome', 'Proof'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody)),
    h('div', { class: 'pager' }, prev, next, more),
  );

  let cp: VerifiedCheckpoint | null = null;
  let events: EventRow[] = []; // newest first
  let from = 0; // lowest index loaded
  let page = 0;
  const verdicts = new Map<number, Verdict>();

  const filtered = () => events.filter((e) =>
    (opFilter.value === '' || e.op === opFilter.value) &&
    (principalFilter.value.trim() === '' || (e.principal ?? '').includes(principalFilter.value.trim())));

  const verdictMark = (v: Verdict | undefined) => v === undefined ? mark('info', 'checking')
    : v.status === 'verified' ? mark('ok', 'verified') : v.status === 'pending' ? mark('info', `pending: ${v.reason}`) : mark('bad', `unverified: ${v.reason}`);

  const draw = () => {
    const list = filtered();
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    page = Math.min(page, pages - 1);
    const shown = list.slice(page * PAGE, (page + 1) * PAGE);
    tbody.replaceChildren(...shown.map((e) => h('tr', { 'data-index': e.index, 'data-verdict': verdicts.get(e.index)?.status ?? 'checking' },
      h('td', {}, e.index), h('td', {}, when(e.time)), h('td', {}, e.op), h('td', {}, e.principal ?? h('span', { class: 'muted' }, 'none')),
      h('td', {}, [e.ns, e.target].filter(Boolean).join(' / ')),
      h('td', {}, e.outcome === 'allowed' ? e.outcome : `${e.outcome}${e.code ? ` (${e.code})` : ''}`),
      h('td', { class: 'verdict' }, verdictMark(verdicts.get(e.index))))));
    listStatus.textContent = `${list.length} of ${events.length} loaded events (indices ${from}–${from + events.length - 1}) · page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    more.disabled = from === 0;
    void verify(shown);
  };

  const verify = async (rows: EventRow[]) => {
    const todo = rows.filter((r) => !verdicts.has(r.index));
    if (cp === null) {
      for (const r of todo) verdicts.set(r.index, { status: 'unverified', reason: 'no verified checkpoint' });
      if (todo.length) redrawMarks();
      return;
    }
    const c = cp;
    // A few at a time: each proof is one API call (an audited, coalesced read).
    for (let i = 0; i < todo.length && alive; i += 6) {
      await Promise.all(todo.slice(i, i + 6).map(async (r) => {
        if (r.index >= c.size) { verdicts.set(r.index, checkInclusion(c, r.index, r.text, null)); return; }
        try {
          const proof = await get<InclusionProof>(`/v1/audit/proof/inclusion?index=${r.index}&size=${c.size}`);
          verdicts.set(r.index, checkInclusion(c, r.index, r.text, proof));
        } catch (e) {
          verdicts.set(r.index, { status: 'unverified', reason: e instanceof ApiFailure ? `no proof (${e.code})` : 'no proof' });
        }
      }));
      redrawMarks();
    }
  };

  const redrawMarks = () => {
    for (const tr of tbody.querySelectorAll<HTMLTableRowElement>('tr[data-index]')) {
      const v = verdicts.get(Number(tr.dataset.index));
      tr.dataset.verdict = v?.status ?? 'checking';
      tr.querySelector('td.verdict')?.replaceChildren(verdictMark(v));
    }
  };

  const loadWindow = async (lo: number, hi: number) => {
    const got: EventRow[] = [];
    for (let a = lo; a < hi; a += 1000) {
      const r = await get<{ events: { index: number; event: string }[] }>(`/v1/audit/events?from=${a}&to=${Math.min(hi, a + 1000)}`);
      got.push(...r.events.map((e) => parseEvent(e.index, e.event)));
    }
    events = [...events, ...got.reverse()];
    from = lo;
    const ops = [...new Set(events.map((e) => e.op))].sort();
    const chosen = opFilter.value;
    opFilter.replaceChildren(h('option', { value: '' }, 'Any operation'), ...ops.map((o) => h('option', { value: o, selected: o === chosen }, o)));
  };

  prev.addEventListener('click', () => { page--; draw(); });
  next.addEventListener('click', () => { page++; draw(); });
  more.addEventListener('click', () => {
    more.disabled = true;
    loadWindow(Math.max(0, from - WINDOW), from).then(draw, (e: unknown) => { listStatus.textContent = String(e); });
  });
  opFilter.addEventListener('input', () => { page = 0; draw(); });
  principalFilter.addEventListener('input', () => { page = 0; draw(); });

  void (async () => {
    try {
      // 1. The log key: pinned in this browser, else as the server serves it (said plainly).
      const served = await get<{ origin: string; verifier_key: string }>('/v1/audit/verifier-key').catch(() => null);
      const pinned = localStorage.getItem(PIN_KEY);
      const key = pinned ?? served?.verifier_key ?? null;
      const pinButton = h('button', { type: 'button', id: 'audit-pin' }, pinned ? 'Forget the pinned key' : 'Pin this key in this browser');
      pinButton.addEventListener('click', () => {
        if (pinned) localStorage.removeItem(PIN_KEY); else if (served) localStorage.setItem(PIN_KEY, served.verifier_key);
        location.reload();
      });
      keyStatus.replaceChildren(
        h('h2', {}, 'Log public key'),
        h('p', {}, h('code', { id: 'audit-key-value', class: 'break' }, key ?? '(none)')),
        pinned
          ? (served && served.verifier_key !== pinned
            ? h('p', { role: 'alert' }, mark('bad', 'The server now serves a different log key than the one pinned here. Events are checked against the pinned key.'))
            : h('p', {}, mark('ok', 'pinned in this browser')))
          : h('p', {}, mark('warn', 'served by this server and not pinned: compare it with the key keyward init printed, then pin it.')),
        ...(served || pinned ? [pinButton] : []),
      );
      if (key === null) throw new Error('no log key: the server is not initialized');
      // 2. The signed checkpoint, verified here.
      const note = await get<{ note: string; size: number }>('/v1/audit/checkpoint');
      try {
        cp = verifyCheckpoint(note.note, key);
        cpStatus.replaceChildren(mark('ok', `Checkpoint signature verified in this browser: ${cp.origin}, ${cp.size} events.`));
      } catch (e) {
        cp = null;
        cpStatus.replaceChildren(mark('bad', `The checkpoint does not verify with the log key (${e instanceof Error ? e.message : String(e)}): no event can be verified.`));
      }
      // 3. The newest events covered by it.
      const size = cp?.size ?? note.size;
      await loadWindow(Math.max(0, size - WINDOW), size);
      if (alive) draw();
    } catch (e) {
      cpStatus.setAttribute('role', 'alert');
      cpStatus.textContent = e instanceof ApiFailure ? `Could not load the audit log: ${e.message} (${e.code})` : String(e);
    }
  })();
  return () => { alive = false; };
};
