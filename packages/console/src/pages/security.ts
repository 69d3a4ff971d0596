/**
 * Security: the signed-in person's second factors (GET /v1/mfa/factors) and
 * enrolling a security key / passkey (POST /v1/mfa/webauthn/options →
 * navigator.credentials.create → POST /v1/mfa/webauthn/{id}). Once a person
 * has an active factor, adding another needs a step-up (lib/step-up.ts), and
 * signing in to the console asks for the factor after the token. Also: an
 * authenticator app (TOTP: POST /v1/mfa/totp, then /v1/mfa/totp/{id}/activate
 * with its first code) and a set of recovery codes (POST /v1/mfa/recovery-codes),
 * each with a step-up when a factor is active.
 */
import type { Page } from '../main.js';
import { ApiFailure, get, post } from '../lib/api.js';
import { h, mark, when } from '../lib/dom.js';
import { sensitive } from '../lib/step-up.js';
import { createCredential, webauthnAvailable } from '../lib/webauthn.js';

interface Factor { id: string; kind: string; name: string; state: string; created: string; last_used: string | null; remaining?: number }

export const securityPage: Page = (main, session) => {
  const status = h('p', { role: 'status', id: 'security-status', class: 'muted' }, 'Loading your second factors…');
  const list = h('ul', { id: 'factor-list', class: 'plain' });
  const name = h('input', { id: 'factor-name', value: 'security key', maxlength: '64', autocomplete: 'off' });
  const add = h('button', { type: 'submit', disabled: !webauthnAvailable() }, 'Add security key');
  const approver = h('input', { id: 'factor-approver', type: 'checkbox' });
  const totpName = h('input', { id: 'totp-name', value: 'authenticator app', maxlength: '64', autocomplete: 'off' });
  const totpAdd = h('button', { type: 'submit' }, 'Add authenticator app');
  const totpPanel = h('div', { id: 'totp-enroll' });
  const recoveryPanel = h('div', { id: 'recovery-codes' });
  main.append(
    h('h1', { tabindex: '-1' }, 'Security'),
    h('p', {}, `Second factors of ${session.principal}. With one active, the console asks for it after the token at sign-in, and sensitive operations (destroying or scheduling the deletion of a key version, policy and role changes, admin tokens) need a step-up bound to the exact request.`),
    status,
    list,
    h('h2', {}, 'Add a security key or passkey'),
    h('form', { id: 'add-factor', onsubmit: (ev) => { ev.preventDefault(); void enroll(); } },
      h('div', { class: 'field' }, h('label', { for: 'factor-name' }, 'Name'), name),
      h('div', { class: 'field check' }, approver, h('label', { for: 'factor-approver' }, 'Also enroll it as my approval key (quorum approvals)')),
      add,
      webauthnAvailable() ? null : h('p', { class: 'muted' }, 'This browser offers no WebAuthn here (it needs HTTPS or localhost).')),
    h('h2', {}, 'Add an authenticator app (TOTP)'),
    h('form', { id: 'add-totp', onsubmit: (ev) => { ev.preventDefault(); void enrollTotp(); } },
      h('div', { class: 'field' }, h('label', { for: 'totp-name' }, 'App name'), totpName),
      totpAdd),
    totpPanel,
    h('h2', {}, 'Recovery codes'),
    h('p', { class: 'muted' }, 'One-time codes that stand in for a lost factor (at sign-in and step-up). Making a new set replaces the old one; they are shown once.'),
    h('button', { type: 'button', id: 'make-recovery', onclick: () => { void recovery(); } }, 'Make recovery codes'),
    recoveryPanel,
  );

  const fail = (what: string, e: unknown) => {
    status.setAttribute('role', 'alert');
    status.textContent = e instanceof ApiFailure ? `${what}: ${e.message} (${e.code})` : `${what}: ${String(e)}`;
  };

  /**
   * TOTP (RFC 6238): POST /v1/mfa/totp (a step-up once the person has a factor) returns the seed
   * once — shown here as the otpauth:// URI and the base32 text to type into the app, never
   * stored by the page — and the factor stays pending until a first code activates it.
   */
  const enrollTotp = async () => {
    totpAdd.disabled = true;
    try {
      const t = await sensitive<{ id: string; otpauth_uri: string; secret_base32: string }>('POST', '/v1/mfa/totp', { name: totpName.value.trim() || 'authenticator app' });
      const code = h('input', { id: 'totp-code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });
      const result = h('p', { role: 'status', id: 'totp-result' });
      await load();
      totpPanel.replaceChildren(h('div', { class: 'panel' },
        h('p', {}, 'Add this account to your authenticator app (shown once; the server keeps the seed sealed):'),
        h('p', {}, 'Key: ', h('code', { id: 'totp-secret', class: 'break' }, t.secret_base32)),
        h('p', {}, 'Or the otpauth URI: ', h('code', { id: 'totp-uri', class: 'break' }, t.otpauth_uri)),
        h('form', { class: 'inline', onsubmit: (ev) => {
          ev.preventDefault();
          void (async () => {
            try {
              await post(`/v1/mfa/totp/${encodeURIComponent(t.id)}/activate`, { code: code.value.trim() });
              totpPanel.replaceChildren();
              await load();
              status.textContent = `Authenticator app activated. ${status.textContent}`;
            } catch (e) {
              result.setAttribute('role', 'alert');
              result.textContent = e instanceof ApiFailure ? `Not activated: ${e.message} (${e.code})` : String(e);
            }
          })();
        } }, h('div', { class: 'field' }, h('label', { for: 'totp-code' }, 'Code from the app'), code), h('button', { type: 'submit' }, 'Activate')),
        result));
      code.focus();
    } catch (e) {
      fail('Could not add the app', e);
    } finally {
      totpAdd.disabled = false;
    }
  };

  const recovery = async () => {
    try {
      const r = await sensitive<{ codes: string[] }>('POST', '/v1/mfa/recovery-codes', {});
      recoveryPanel.replaceChildren(h('div', { class: 'panel' },
        h('p', {}, 'Write these down now; each works once, and they are not shown again:'),
        h('ul', { class: 'plain mono', id: 'recovery-list' }, ...r.codes.map((c) => h('li', {}, c)))));
      await load();
    } catch (e) {
      fail('Could not make recovery codes', e);
    }
  };

  const load = async () => {
    try {
      const { factors } = await get<{ factors: Factor[] }>('/v1/mfa/factors');
      list.replaceChildren(...factors.map((f) => h('li', { 'data-factor': f.id, 'data-state': f.state },
        h('strong', {}, f.name), ` (${f.kind}) `, f.state === 'active' ? mark('ok', 'active') : mark('warn', f.state),
        ` · added ${when(f.created)}`, f.last_used ? ` · last used ${when(f.last_used)}` : '', f.remaining !== undefined ? ` · ${f.remaining} codes left` : '')));
      const active = factors.filter((f) => f.state === 'active' && f.kind !== 'recovery').length;
      status.textContent = active === 0 ? 'No active second factor: sign-in takes the token alone.' : `${active} active second factor${active > 1 ? 's' : ''}.`;
    } catch (e) {
      status.setAttribute('role', 'alert');
      status.textContent = e instanceof ApiFailure ? `Could not load factors: ${e.message} (${e.code})` : String(e);
    }
  };

  const enroll = async () => {
    add.disabled = true;
    try {
      const started = await sensitive<{ id: string; options: Record<string, unknown> }>('POST', '/v1/mfa/webauthn/options', { name: name.value.trim() || 'security key' });
      status.textContent = 'Touch your security key…';
      const cred = await createCredential(started.options);
      await post(`/v1/mfa/webauthn/${encodeURIComponent(started.id)}`, { response: cred.response });
      let also = '';
      if (approver.checked) {
        // A governance change (docs/mfa.md §Quorum approval): a step-up with the key just added, then the keyholder signs it.
        await sensitive('PUT', `/v1/approvers/${encodeURIComponent(session.principal)}/keys/${encodeURIComponent(cred.id)}`, { kind: 'webauthn', public_key: cred.cose });
        also = ' It is also your approval key.';
      }
      await load();
      status.textContent = `Security key added.${also} ${status.textContent}`;
    } catch (e) {
      status.setAttribute('role', 'alert');
      status.textContent = e instanceof ApiFailure ? `Could not add the key: ${e.message} (${e.code})` : `Could not add the key: ${String(e)}`;
    } finally {
      add.disabled = !webauthnAvailable();
    }
  };

  void load();
};
