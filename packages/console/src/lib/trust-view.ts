/**
 * How the seal page and the Directory page show what the browser pinned
 * about the directory (lib/directory.ts), a changed configuration with the
 * explicit re-pin, and a head's witness check.
 */
import type { DirectoryWitnessConfig, WitnessedHead } from '@keyward/client';
import { h, mark, when } from './dom.js';
import { PinChanged, repin, type DirectoryPin, type PinState, type Presented } from './directory.js';

const nth = (k: number): string => (k === 1 ? 'freshest' : `${k}${k === 2 ? 'nd' : k === 3 ? 'rd' : 'th'} freshest`);
const ago = (seconds: number): string => (seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`);

function witnessList(w: DirectoryWitnessConfig, id: string): HTMLElement {
  return h('div', {},
    h('p', {}, `${w.k ?? w.witnesses.length} of ${w.witnesses.length} witnesses must cosign. Head-log key: `, h('code', { class: 'break' }, w.logKey)),
    h('ul', { class: 'plain', id }, ...w.witnesses.map((x) => h('li', { 'data-witness': x.name }, h('strong', {}, x.name), ' ', h('code', { class: 'break' }, x.key)))));
}

function configView(p: Presented, idPrefix: string): HTMLElement {
  return h('div', {},
    h('p', {}, 'Log configuration: ', h('code', { class: 'break', id: `${idPrefix}-configuration` }, p.configuration)),
    p.witnesses === null
      ? h('p', { id: `${idPrefix}-witnesses`, 'data-k': '0' }, 'No directory witnesses: heads are checked against the log\'s own signature only.')
      : h('div', { id: `${idPrefix}-witnesses`, 'data-k': String(p.witnesses.k ?? p.witnesses.witnesses.length) }, witnessList(p.witnesses, `${idPrefix}-witness-list`)));
}

/** The pinned values (or that nothing is pinned yet), and how they came to be pinned on this connection. */
export function pinView(pin: DirectoryPin | null, state: PinState | 'repinned' = 'pinned'): HTMLElement {
  if (pin === null) {
    return h('div', { id: 'pin', 'data-state': 'none' },
      h('p', { class: 'muted' }, 'Nothing pinned in this browser yet: the first directory look-up pins the log configuration and the witnesses this server presents (GET /v1/directory/config).'));
  }
  const note = state === 'first-use' ? [mark('info', 'pinned now'), ' on first use: compare these values with what the operator published.']
    : state === 'witnesses-first-use' ? [mark('info', 'witnesses pinned now'), ' on first use (none were pinned before).']
      : state === 'repinned' ? [mark('info', 'pinned again'), ` ${when(pin.pinnedAt)}, by you: the next directory look-up checks this server against these values.`]
        : [mark('ok', 'pinned'), ` in this browser ${when(pin.pinnedAt)}${pin.witnessesPinnedAt !== null && pin.witnessesPinnedAt !== pin.pinnedAt ? `, witnesses ${when(pin.witnessesPinnedAt)}` : ''}.`];
  return h('div', { id: 'pin', 'data-state': state }, h('p', {}, ...note), configView(pin, 'pinned'));
}

/**
 * A changed configuration: what differs, the pinned and presented values side by side, and the
 * explicit re-pin (`onRepinned` runs after it).
 */
export function pinChangedView(e: PinChanged, onRepinned: () => void): HTMLElement {
  const button = h('button', { type: 'button', id: 'repin' }, 'Pin what this server presents now');
  const out = h('div', { role: 'status' });
  button.addEventListener('click', () => {
    button.disabled = true;
    repin(e.presented).then(onRepinned, (err: unknown) => {
      button.disabled = false;
      out.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'not pinned'), ` ${String(err)}`));
    });
  });
  return h('div', { id: 'pin', 'data-state': 'changed', 'data-code': e.code },
    h('p', { role: 'alert' }, mark('bad', 'changed'), ` This server presents another ${e.code === 'KT_BAD_RESPONSE' ? 'directory configuration' : 'witness configuration'} than the one pinned in this browser (${e.code}): nothing from the directory is used.`),
    h('ul', { id: 'pin-changes' }, ...e.changes.map((c) => h('li', {}, c))),
    h('div', { class: 'compare' },
      h('div', {}, h('h3', {}, `Pinned ${when(e.pin.pinnedAt)}`), configView(e.pin, 'pinned')),
      h('div', {}, h('h3', {}, 'Presented now'), configView(e.presented, 'presented'))),
    h('p', { class: 'muted' }, 'Pin again only if the operator changed the deployment on purpose (new witnesses, another k, new directory keys) and the presented values are the ones they published; otherwise this server, or something between it and you, is presenting a directory you did not pin.'),
    button, out);
}

/** Renders `e` as a pin change when it is one, else null. */
export function maybePinChanged(e: unknown, onRepinned: () => void): HTMLElement | null {
  return e instanceof PinChanged ? pinChangedView(e, onRepinned) : null;
}

/**
 * A head's witness check, as accepted: its size and which pinned witnesses cosigned it, when; or,
 * with no witnesses pinned, that the head is not cosigned.
 */
export function witnessedView(w: WitnessedHead | undefined | null, pin: DirectoryPin, treeSize: number | undefined): HTMLElement {
  if (pin.witnesses === null) {
    return h('p', { id: 'witness-check', 'data-verified': 'false', 'data-reason': 'no-witnesses' },
      mark('warn', 'not cosigned'), ` Head${treeSize !== undefined ? ` of size ${treeSize}` : ''}: no directory witnesses are pinned for this deployment, so this page checks it against the log's signature only.`);
  }
  if (w === undefined || w === null) {
    return h('p', { id: 'witness-check', 'data-verified': 'false' }, mark('bad', 'not checked'), ' No head was checked against the pinned witnesses.');
  }
  const now = Math.floor(Date.now() / 1000);
  return h('div', { id: 'witness-check', 'data-verified': 'true', 'data-size': String(w.treeSize) },
    h('p', {}, mark('ok', 'cosigned'), ` Head of size ${w.treeSize}: cosigned by ${w.cosignatures.length} of the ${w.n} pinned witnesses (${w.k} required), the ${nth(w.k)} cosignature ${ago(w.ageSeconds)} old (at most ${ago(w.maxAgeSeconds)}):`),
    h('ul', { class: 'plain', id: 'cosigners' }, ...w.cosignatures.map((c) => h('li', { 'data-witness': c.name },
      `${c.name}: cosigned ${when(new Date(c.timestamp * 1000).toISOString())} (${ago(Math.max(0, now - c.timestamp))} ago)`))));
}
