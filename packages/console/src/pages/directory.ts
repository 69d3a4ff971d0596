/**
 * Directory (issue #6's HTTP API): the signed tree head of the key
 * transparency log (GET /v1/directory/head); its checkpoints and witnesses
 * (GET /v1/directory/witnesses: the size and newest entry's time, the newest
 * head-log checkpoint k witnesses cosigned, and per witness the size it
 * holds, its last cosignature and last error); and the identities and
 * groups with their current devices and members (GET
 * /v1/directory/identities).
 *
 * The current head is also **verified in this browser**, as the seal demo
 * verifies the heads of its look-ups (lib/directory.ts): `Directory.verifyHead`
 * of @keyward/client checks its signature against the log configuration
 * pinned in this browser and, with witnesses pinned, accepts it only as the
 * latest entry of a head-log checkpoint k of the pinned witnesses cosigned
 * within a day; the page marks it verified (with who cosigned) or unverified
 * (with the typed error), shows the pinned values, and a changed
 * configuration with the explicit re-pin.
 */
import type { Page } from '../main.js';
import { ApiFailure, get } from '../lib/api.js';
import { directory, errorCode } from '../lib/directory.js';
import { h, mark, when } from '../lib/dom.js';
import { maybePinChanged, pinView, witnessedView } from '../lib/trust-view.js';

interface Witnesses {
  head: { tree_size: number; time: string } | null;
  log_key: string | null; k: number; n: number;
  witnessed: { tree_size: number; checkpoint: string; cosigned: string[]; time: string } | null;
  witnesses: { name: string; url: string; size: number; last_ok: string | null; last_error: { time: string; code: string; message: string } | null }[];
}

interface Entity {
  name: string; kind: string; principal: string | null; updated: string;
  devices?: { id: string; hpke: { alg: string }; added: number; added_by: string }[]; members?: string[];
}

export const directoryPage: Page = (main) => {
  const head = h('dl', { id: 'dir-head', class: 'cards' });
  const verified = h('div', { id: 'dir-verify', 'data-verified': 'checking', role: 'status' }, h('p', { class: 'muted' }, 'Checking the current head in this browser…'));
  const trust = h('div', { id: 'trust' });
  const witnessed = h('div', { id: 'dir-witnessed' }, h('p', { class: 'muted' }, 'Loading…'));
  const wbody = h('tbody');
  const status = h('p', { role: 'status', id: 'dir-status', class: 'muted' }, 'Loading the directory…');
  const tbody = h('tbody');
  main.append(
    h('h1', { tabindex: '-1' }, 'Directory'),
    h('h2', {}, 'Log head'), head,
    h('h2', {}, 'Verified in this browser'), verified,
    h('details', { id: 'trust-details' }, h('summary', {}, 'What this browser pinned'), trust),
    h('h2', {}, 'Checkpoints and witnesses'), witnessed,
    h('div', { class: 'table-wrap' }, h('table', { id: 'dir-witnesses' },
      h('caption', { class: 'sr-only' }, 'Witnesses of the directory'),
      h('thead', {}, h('tr', {}, ...['Witness', 'Size held', 'Last cosignature', 'Status'].map((t) => h('th', { scope: 'col' }, t)))), wbody)),
    h('h2', {}, 'Identities and groups'), status,
    h('div', { class: 'table-wrap' }, h('table', { id: 'dir-table' },
      h('caption', { class: 'sr-only' }, 'Identities and groups'),
      h('thead', {}, h('tr', {}, ...['Name', 'Kind', 'Devices / members', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))), tbody)),
  );
  const showWitnesses = async () => {
    try {
      const w = await get<Witnesses>('/v1/directory/witnesses');
      if (w.head) head.append(card('Newest entry', when(w.head.time)));
      if (w.n === 0) {
        witnessed.replaceChildren(h('p', {}, mark('warn', 'No witnesses configured: directory heads are signed by this server only, not cosigned.')));
      } else {
        const behind = w.witnessed !== null && w.head !== null && w.witnessed.tree_size < w.head.tree_size;
        witnessed.replaceChildren(
          h('p', {}, `${w.k} of ${w.n} witnesses must cosign. Head log key: `, h('code', { class: 'break' }, w.log_key ?? '—')),
          w.witnessed === null
            ? h('p', {}, mark('bad', 'No head has been cosigned by enough witnesses yet.'))
            : h('div', {},
              h('p', { id: 'dir-cosigned', 'data-size': w.witnessed.tree_size },
                behind ? mark('warn', `newest cosigned head: size ${w.witnessed.tree_size}`) : mark('ok', 'current head cosigned'),
                ` — size ${w.witnessed.tree_size}${behind ? ` (the log is at ${w.head!.tree_size}; cosigning follows)` : ''}, by ${w.witnessed.cosigned.join(', ')}, ${when(w.witnessed.time)}`),
              h('pre', { class: 'note', tabindex: '0', 'aria-label': 'The cosigned head-log checkpoint' }, w.witnessed.checkpoint)));
      }
      wbody.replaceChildren(...w.witnesses.map((x) => h('tr', { 'data-witness': x.name, 'data-ok': String(x.last_ok !== null && (x.last_error === null || x.last_error.time < x.last_ok)) },
        h('th', { scope: 'row' }, x.name, h('br'), h('span', { class: 'muted break' }, x.url)),
        h('td', {}, String(x.size)),
        h('td', {}, x.last_ok ? when(x.last_ok) : 'never'),
        h('td', {}, x.last_error !== null && (x.last_ok === null || x.last_error.time > x.last_ok)
          ? h('span', {}, mark('bad', x.last_error.code), ` ${x.last_error.message} (${when(x.last_error.time)})`)
          : x.last_ok !== null ? mark('ok', 'cosigning') : mark('info', 'not contacted yet')))));
    } catch (e) {
      witnessed.replaceChildren(h('p', { role: 'alert' }, e instanceof ApiFailure ? `Could not load the witnesses: ${e.message} (${e.code})` : String(e)));
    }
  };
  const verifyHead = async (): Promise<void> => {
    try {
      const { dir, pin, state } = await directory();
      trust.replaceChildren(pinView(pin, state));
      const hd = await dir.verifyHead();
      verified.dataset.code = '';
      if (hd === null) {
        verified.dataset.verified = 'empty';
        verified.replaceChildren(h('p', {}, mark('info', 'empty'), ' The log is empty: no head to verify.'));
        return;
      }
      verified.dataset.verified = pin.witnesses === null ? 'unwitnessed' : 'true';
      verified.dataset.size = String(hd.treeSize);
      verified.replaceChildren(
        h('p', {}, mark('ok', 'verified'), ` Current head (size ${hd.treeSize}): signature verified against the log configuration pinned in this browser.`),
        witnessedView(hd.witnessed, pin, hd.treeSize));
    } catch (e) {
      const changed = maybePinChanged(e, () => { void verifyHead(); });
      if (changed !== null) {
        trust.replaceChildren(changed);
        (trust.parentElement as HTMLDetailsElement | null)?.setAttribute('open', '');
      }
      const code = errorCode(e);
      verified.dataset.verified = 'false';
      verified.dataset.code = code ?? '';
      verified.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'not verified'), ` Current head: ${e instanceof Error ? e.message : String(e)}${code !== null ? ` (${code})` : ''}`));
    }
  };
  const card = (k: string, v: string) => h('div', { class: 'card' }, h('dt', {}, k), h('dd', { class: 'mono break' }, v));
  void (async () => {
    try {
      const hd = await get<{ tree_size: number; root: string; signature: string }>('/v1/directory/head').catch((e: unknown) => {
        if (e instanceof ApiFailure && e.code === 'KT_NOT_FOUND') return null;
        throw e;
      });
      head.replaceChildren(...(hd === null ? [card('Tree size', '0 (empty log)')] : [card('Tree size', String(hd.tree_size)), card('Root', hd.root), card('Signature', hd.signature)]));
      void showWitnesses();
      if (hd === null) {
        verified.dataset.verified = 'empty';
        verified.replaceChildren(h('p', {}, mark('info', 'empty'), ' The log is empty: no head to verify.'));
      } else void verifyHead();
      const { entities } = await get<{ entities: Entity[] }>('/v1/directory/identities');
      tbody.replaceChildren(...entities.map((e) => h('tr', { 'data-name': e.name },
        h('th', { scope: 'row' }, e.name), h('td', {}, e.kind),
        h('td', {}, e.kind === 'group' ? (e.members ?? []).join(', ') || '—'
          : (e.devices ?? []).map((d) => `${d.id} (${d.hpke.alg}, added by ${d.added_by})`).join('; ') || 'no device yet'),
        h('td', {}, when(e.updated)))));
      status.textContent = `${entities.length} entr${entities.length === 1 ? 'y' : 'ies'}.`;
    } catch (e) {
      status.setAttribute('role', 'alert');
      status.textContent = e instanceof ApiFailure ? `Could not load the directory: ${e.message} (${e.code})` : String(e);
    }
  })();
};
