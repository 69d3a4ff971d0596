/**
 * /console/seal — Keyward in the browser: make an X25519 identity kept in
 * IndexedDB (lib/identity-store.ts), publish it as a device of a directory
 * identity (optional, with an enrollment token), seal a chosen file to a
 * recipient string or to directory identities — resolved to their current
 * device keys with KEYTRANS proofs verified in this page, against a head
 * cosigned by k of the witnesses pinned in this browser when the deployment
 * has directory witnesses (lib/directory.ts) — and open an envelope again.
 * Files never leave the page; no sign-in needed (the directory's reads and
 * enrollment are open routes).
 */
import { HpkeRecipient, isKeywardError, open, parseRecipient, seal, type Recipient } from '@keyward/core';
import { ENTITY_NAME } from '@keyward/client';
import { TlogError } from '@keyward/tlog';
import { h, mark } from './lib/dom.js';
import { directory, errorCode, fromB64u, loadPin, type Connected } from './lib/directory.js';
import { maybePinChanged, pinView, witnessedView } from './lib/trust-view.js';
import { createIdentity, deleteIdentity, loadIdentity, webCryptoX25519, type BrowserIdentity } from './lib/identity-store.js';

const main = document.getElementById('main')!;
const forceFallback = new URLSearchParams(location.search).get('keys') === 'core';

async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b as BufferSource));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

function download(bytes: Uint8Array, name: string, label: string): HTMLAnchorElement {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  return h('a', { href: url, download: name }, label);
}

function message(e: unknown): string {
  if (isKeywardError(e)) return `${e.message} (${e.code})`;
  const code = errorCode(e);
  if (code !== null) return `${(e as Error).message} (${code})`;
  return e instanceof Error ? e.message : String(e);
}

const STORAGE_TEXT = {
  'webcrypto-x25519': 'WebCrypto X25519, non-extractable: the private key never leaves the browser\'s crypto module (not even this page can read it).',
  'core-x25519-wrapped': 'Fallback (this browser has no X25519 in WebCrypto, or ?keys=core): an @keyward/core X25519 secret, stored encrypted under a non-extractable WebCrypto AES-256-GCM key and decrypted in memory only while opening.',
} as const;

let current: BrowserIdentity | null = null;
let lastEnvelope: { bytes: Uint8Array; name: string } | null = null;

const idStatus = h('div', { id: 'identity-status', role: 'status' });
const recipientOut = h('input', { id: 'own-recipient', type: 'text', readonly: true, class: 'mono' });
const genButton = h('button', { type: 'button', id: 'generate' }, 'Generate a new identity');
const delButton = h('button', { type: 'button', id: 'delete-identity' }, 'Delete identity');

const recipientIn = h('input', { id: 'recipient', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'recipient-help' });
const fileIn = h('input', { id: 'plain-file', type: 'file' });
const sealOut = h('div', { id: 'seal-result', role: 'status' });
const envIn = h('input', { id: 'envelope-file', type: 'file' });
const openLast = h('button', { type: 'button', id: 'open-last', disabled: true }, 'Open the envelope just sealed');
const openOut = h('div', { id: 'open-result', role: 'status' });

async function showIdentity(): Promise<void> {
  current = await loadIdentity();
  const wc = await webCryptoX25519();
  if (current === null) {
    idStatus.replaceChildren(h('p', {}, 'No identity in this browser yet.'),
      h('p', { class: 'muted' }, wc ? 'This browser supports X25519 in WebCrypto: the key will be non-extractable.' : 'This browser has no X25519 in WebCrypto: the fallback will be used.'));
    recipientOut.value = '';
  } else {
    idStatus.replaceChildren(
      h('p', {}, mark('ok', `Identity created ${current.created}`)),
      h('p', { id: 'key-storage', 'data-storage': current.storage }, STORAGE_TEXT[current.storage]));
    recipientOut.value = current.recipient;
    if (recipientIn.value === '') recipientIn.value = current.recipient;
  }
  delButton.disabled = current === null;
  enrollButton.disabled = current === null;
  enrollStatus.replaceChildren(current?.enrolled
    ? h('p', { id: 'enrolled' }, mark('ok', `Published as device ${current.enrolled.device} of ${current.enrolled.name} (version ${current.enrolled.version}, ${current.enrolled.at}).`))
    : h('p', { class: 'muted' }, 'Not published in the directory.'));
}

genButton.addEventListener('click', () => {
  genButton.disabled = true;
  createIdentity(forceFallback).then(async (id) => { recipientIn.value = id.recipient; await showIdentity(); }, (e: unknown) => {
    idStatus.replaceChildren(h('p', { role: 'alert' }, mark('bad', message(e))));
  }).finally(() => { genButton.disabled = false; });
});
delButton.addEventListener('click', () => {
  void deleteIdentity().then(showIdentity);
});

// --- the directory: publish this browser, resolve names with proofs -----------------------------

// What the browser trusts about the directory: the pinned values, a changed configuration with
// the explicit re-pin, shown after each directory use (and from IndexedDB at load).
const trustOut = h('div', { id: 'trust' });

async function showPin(): Promise<void> {
  trustOut.replaceChildren(pinView(await loadPin()));
}

/** The pinned directory client; a changed configuration is shown with its re-pin, and thrown. */
async function pinnedDirectory(): Promise<Connected> {
  try {
    const c = await directory();
    trustOut.replaceChildren(pinView(c.pin, c.state));
    return c;
  } catch (e) {
    const changed = maybePinChanged(e, () => {
      void loadPin().then((p) => trustOut.replaceChildren(pinView(p, 'repinned')));
    });
    if (changed !== null) trustOut.replaceChildren(changed);
    throw e;
  }
}

const enrollName = h('input', { id: 'enroll-name', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: 'false', placeholder: 'user:alice' });
const enrollDevice = h('input', { id: 'enroll-device', type: 'text', class: 'mono', autocomplete: 'off', spellcheck: 'false', value: 'browser' });
const enrollToken = h('input', { id: 'enroll-token', type: 'password', autocomplete: 'off' });
const enrollButton = h('button', { type: 'submit', id: 'enroll', disabled: true }, 'Publish this browser');
const enrollStatus = h('div', { id: 'enroll-status', role: 'status' });
const enrollOut = h('div', { id: 'enroll-result', role: 'status' });
const enrollForm = h('form', { id: 'enroll-form' },
  h('div', { class: 'field' }, h('label', { for: 'enroll-name' }, 'Directory identity'), enrollName),
  h('div', { class: 'field' }, h('label', { for: 'enroll-device' }, 'Device id'), enrollDevice),
  h('div', { class: 'field' }, h('label', { for: 'enroll-token' }, 'Enrollment token'), enrollToken,
    h('p', { class: 'muted' }, 'One-time, from an administrator (POST /v1/directory/enroll-tokens). It is sent once and not kept.')),
  enrollButton, enrollOut);
enrollForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    if (current === null) return;
    enrollButton.disabled = true;
    enrollOut.replaceChildren(h('p', { class: 'muted' }, 'Publishing…'));
    try {
      const e = await current.enroll((await pinnedDirectory()).dir, enrollName.value.trim(), enrollDevice.value.trim(), enrollToken.value.trim());
      enrollToken.value = '';
      enrollOut.replaceChildren(h('p', {}, mark('ok', `Enrolled: device ${e.device} of ${e.name} is in the directory (version ${e.version}, checked with proofs).`)));
      await showIdentity();
    } catch (e) {
      enrollOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'not published'), ` ${message(e)}`));
    } finally {
      enrollButton.disabled = current === null;
    }
  })();
});

const resolved = h('div', { id: 'resolved' });

/** Recipients for the field's text: a recipient string, or directory names resolved with proofs. */
async function resolveRecipients(text: string): Promise<Recipient[]> {
  const names = text.split(/[\s,]+/).filter((n) => n !== '');
  resolved.replaceChildren();
  if (names.length === 0) throw new Error('Enter a recipient.');
  if (!names.every((n) => ENTITY_NAME.test(n))) {
    if (names.length !== 1) throw new Error('Give one recipient string, or directory identities only.');
    return [await parseRecipient(names[0]!)];
  }
  const { dir, pin, state } = await pinnedDirectory();
  const devices = await dir.devices(names);
  // Every search above was refused unless its head had k fresh cosignatures of the pinned
  // witnesses (Directory.search); this only makes sure the head shown is the one checked.
  const w = dir.lastWitnessed;
  if (pin.witnesses !== null && (w === undefined || w.treeSize !== dir.kt.treeSize)) {
    throw new TlogError('TLOG_NOT_ENOUGH_COSIGNATURES', `the directory head of size ${dir.kt.treeSize ?? 0} was not checked against the pinned witnesses`);
  }
  const recipients = await Promise.all(devices.map((d) => HpkeRecipient.fromPublicKey(d.device.hpke.alg, fromB64u(d.device.hpke.key))));
  resolved.replaceChildren(
    h('p', {}, mark('ok', `Resolved in the directory with proofs verified in this browser (log size ${dir.kt.treeSize ?? 0}${state === 'first-use' ? ', configuration pinned now (first use)' : ', configuration pinned in this browser'}):`)),
    h('ul', { id: 'resolved-devices', class: 'plain' }, ...devices.map((d) => h('li', { 'data-name': d.name, 'data-device': d.device.id }, `${d.name}: device ${d.device.id} (${d.device.hpke.alg})`))),
    witnessedView(w, pin, dir.kt.treeSize));
  return recipients;
}

const sealForm = h('form', { id: 'seal-form' },
  h('div', { class: 'field' }, h('label', { for: 'recipient' }, 'Recipient'), recipientIn,
    h('p', { id: 'recipient-help', class: 'muted' }, 'A Keyward recipient string (kwx25519…, kwxwing…, kwp256…; yours is filled in), or directory identities (user:NAME, service:NAME, group:NAME; several separated by commas or spaces): their current device keys are looked up with proofs checked in this page.')),
  h('div', { class: 'field' }, h('label', { for: 'plain-file' }, 'File to seal'), fileIn),
  h('button', { type: 'submit', id: 'seal' }, 'Seal'),
  sealOut);
sealForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    const f = fileIn.files?.[0];
    if (!f) { sealOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'Choose a file.'))); return; }
    try {
      const recipients = await resolveRecipients(recipientIn.value);
      const data = new Uint8Array(await f.arrayBuffer());
      const envelope = await seal(data, { recipients });
      lastEnvelope = { bytes: envelope, name: `${f.name}.kw` };
      openLast.disabled = false;
      sealOut.replaceChildren(
        h('p', {}, mark('ok', `Sealed ${data.length} bytes into a ${envelope.length}-byte envelope for ${recipients.length} recipient${recipients.length === 1 ? '' : 's'}.`)),
        resolved,
        h('p', {}, 'Plaintext SHA-256: ', h('code', { id: 'plain-sha256', class: 'break' }, await sha256Hex(data))),
        h('p', {}, download(envelope, lastEnvelope.name, `Download ${lastEnvelope.name}`)));
    } catch (e) {
      sealOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'not sealed'), ` ${message(e)}`));
    }
  })();
});

async function openBytes(bytes: Uint8Array, name: string): Promise<void> {
  try {
    if (current === null) throw new Error('No identity in this browser: generate one first.');
    const r = await open(bytes, { identities: [await current.identity()] });
    const outName = name.replace(/\.kw$/, '') || 'opened';
    openOut.replaceChildren(
      h('p', {}, mark('ok', `Opened ${r.plaintext.length} bytes (${r.aead}).`)),
      h('p', {}, 'Plaintext SHA-256: ', h('code', { id: 'opened-sha256', class: 'break' }, await sha256Hex(r.plaintext))),
      h('p', {}, download(r.plaintext, outName, `Download ${outName}`)));
  } catch (e) {
    openOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', message(e))));
  }
}

openLast.addEventListener('click', () => { if (lastEnvelope) void openBytes(lastEnvelope.bytes, lastEnvelope.name); });
envIn.addEventListener('change', () => {
  const f = envIn.files?.[0];
  if (f) void f.arrayBuffer().then((b) => openBytes(new Uint8Array(b), f.name));
});

main.replaceChildren(
  h('h1', { tabindex: '-1' }, 'Seal and open in the browser'),
  h('p', { class: 'muted' }, 'Sealing and opening run in your browser with @keyward/core; files are never uploaded. Directory look-ups and enrollment use this server\'s public /v1/directory routes, and every answer is checked here.'),
  h('section', { 'aria-labelledby': 'h-identity', class: 'panel' },
    h('h2', { id: 'h-identity' }, 'Your browser identity'), idStatus,
    h('div', { class: 'field' }, h('label', { for: 'own-recipient' }, 'Your recipient string'), recipientOut),
    h('div', { class: 'row' }, genButton, delButton)),
  h('section', { 'aria-labelledby': 'h-directory', class: 'panel' }, h('h2', { id: 'h-directory' }, 'Publish this browser in the directory'),
    h('p', { class: 'muted' }, 'Adds this browser\'s public keys as a device of a directory identity, so that others can seal to the identity and this browser can open.'),
    enrollStatus, enrollForm),
  h('section', { 'aria-labelledby': 'h-trust', class: 'panel' }, h('h2', { id: 'h-trust' }, 'What this browser trusts about the directory'),
    h('p', { class: 'muted' }, 'Directory answers are checked against values pinned in this browser on first use: the log configuration and, when the deployment has directory witnesses, their keys and how many must cosign. A head without k fresh cosignatures of the pinned witnesses is refused, and so is a server that later presents other values, until you pin again.'),
    trustOut),
  h('section', { 'aria-labelledby': 'h-seal', class: 'panel' }, h('h2', { id: 'h-seal' }, 'Seal a file'), sealForm),
  h('section', { 'aria-labelledby': 'h-open', class: 'panel' }, h('h2', { id: 'h-open' }, 'Open an envelope'),
    h('div', { class: 'field' }, h('label', { for: 'envelope-file' }, 'Envelope file'), envIn),
    openLast, openOut),
);
void showIdentity().then(showPin).then(() => { main.dataset.ready = 'true'; }, (e: unknown) => {
  idStatus.replaceChildren(h('p', { role: 'alert' }, mark('bad', `IndexedDB unavailable: ${message(e)}`)));
  main.dataset.ready = 'true';
});
