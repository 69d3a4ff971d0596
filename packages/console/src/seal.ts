/**
 * /console/seal — Keyward in the browser, no server involved: make an X25519
 * identity kept in IndexedDB (lib/identity-store.ts), seal a chosen file to a
 * recipient string with @keyward/core, and open an envelope again. Nothing
 * leaves the page; no sign-in needed.
 */
import { isKeywardError, open, parseRecipient, seal } from '@keyward/core';
import { h, mark } from './lib/dom.js';
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

const sealForm = h('form', { id: 'seal-form' },
  h('div', { class: 'field' }, h('label', { for: 'recipient' }, 'Recipient'), recipientIn,
    h('p', { id: 'recipient-help', class: 'muted' }, 'A Keyward recipient string (kwx25519…, kwxwing…, kwp256…). Yours is filled in.')),
  h('div', { class: 'field' }, h('label', { for: 'plain-file' }, 'File to seal'), fileIn),
  h('button', { type: 'submit', id: 'seal' }, 'Seal'),
  sealOut);
sealForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void (async () => {
    const f = fileIn.files?.[0];
    if (!f) { sealOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', 'Choose a file.'))); return; }
    try {
      const recipient = await parseRecipient(recipientIn.value.trim());
      const data = new Uint8Array(await f.arrayBuffer());
      const envelope = await seal(data, { recipients: [recipient] });
      lastEnvelope = { bytes: envelope, name: `${f.name}.kw` };
      openLast.disabled = false;
      sealOut.replaceChildren(
        h('p', {}, mark('ok', `Sealed ${data.length} bytes into a ${envelope.length}-byte envelope.`)),
        h('p', {}, 'Plaintext SHA-256: ', h('code', { id: 'plain-sha256', class: 'break' }, await sha256Hex(data))),
        h('p', {}, download(envelope, lastEnvelope.name, `Download ${lastEnvelope.name}`)));
    } catch (e) {
      sealOut.replaceChildren(h('p', { role: 'alert' }, mark('bad', message(e))));
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
  h('p', { class: 'muted' }, 'Everything on this page runs in your browser with @keyward/core; files are never uploaded.'),
  h('section', { 'aria-labelledby': 'h-identity', class: 'panel' },
    h('h2', { id: 'h-identity' }, 'Your browser identity'), idStatus,
    h('div', { class: 'field' }, h('label', { for: 'own-recipient' }, 'Your recipient string'), recipientOut),
    h('div', { class: 'row' }, genButton, delButton)),
  h('section', { 'aria-labelledby': 'h-seal', class: 'panel' }, h('h2', { id: 'h-seal' }, 'Seal a file'), sealForm),
  h('section', { 'aria-labelledby': 'h-open', class: 'panel' }, h('h2', { id: 'h-open' }, 'Open an envelope'),
    h('div', { class: 'field' }, h('label', { for: 'envelope-file' }, 'Envelope file'), envIn),
    openLast, openOut),
  h('p', { class: 'muted' }, 'Sealing to a directory identity (looked up with proofs) arrives with the directory HTTP API (issue #6).'),
);
void showIdentity().then(() => { main.dataset.ready = 'true'; }, (e: unknown) => {
  idStatus.replaceChildren(h('p', { role: 'alert' }, mark('bad', `IndexedDB unavailable: ${message(e)}`)));
  main.dataset.ready = 'true';
});
