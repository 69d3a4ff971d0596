/**
 * Directory (issue #6's HTTP API): the signed tree head of the key
 * transparency log (GET /v1/directory/head), and the identities and groups
 * with their current devices and members (GET /v1/directory/identities).
 * The head's signature is shown, not verified here: clients verify heads
 * with proofs (keyward directory monitor); the audit log's witnesses are on
 * GET /v1/audit/witnesses.
 */
import type { Page } from '../main.js';
import { ApiFailure, get } from '../lib/api.js';
import { h, when } from '../lib/dom.js';

interface Entity {
  name: string; kind: string; principal: string | null; updated: string;
  devices?: { id: string; hpke: { alg: string }; added: number; added_by: string }[]; members?: string[];
}

export const directoryPage: Page = (main) => {
  const head = h('dl', { id: 'dir-head', class: 'cards' });
  const status = h('p', { role: 'status', id: 'dir-status', class: 'muted' }, 'Loading the directory…');
  const tbody = h('tbody');
  main.append(
    h('h1', { tabindex: '-1' }, 'Directory'),
    h('h2', {}, 'Log head'), head,
    h('h2', {}, 'Identities and groups'), status,
    h('div', { class: 'table-wrap' }, h('table', { id: 'dir-table' },
      h('caption', { class: 'sr-only' }, 'Identities and groups'),
      h('thead', {}, h('tr', {}, ...['Name', 'Kind', 'Devices / members', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))), tbody)),
  );
  const card = (k: string, v: string) => h('div', { class: 'card' }, h('dt', {}, k), h('dd', { class: 'mono break' }, v));
  void (async () => {
    try {
      const hd = await get<{ tree_size: number; root: string; signature: string }>('/v1/directory/head').catch((e: unknown) => {
        if (e instanceof ApiFailure && e.code === 'KT_NOT_FOUND') return null;
        throw e;
      });
      head.replaceChildren(...(hd === null ? [card('Tree size', '0 (empty log)')] : [card('Tree size', String(hd.tree_size)), card('Root', hd.root), card('Signature', hd.signature)]));
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
