/**
 * Step-up in the console (docs/mfa.md §Flow): before a sensitive request
 * (destroying or scheduling the deletion of a key version, a factor change…)
 * the page asks the API for a step-up bound to that exact request
 * (`POST /v1/mfa/step-up { method, path, body }`), shows the person the
 * canonical request the server will hash, has the authenticator sign the
 * request hash (`navigator.credentials.get`, challenge = the step-up id) or
 * takes a TOTP code, verifies it (`POST /v1/mfa/step-up/{id}/verify`) and
 * sends the request with `Keyward-Step-Up: <id>`. The body sent is the very
 * object the step-up was asked for, so the hashes match.
 *
 * A person without an active factor (MFA not enforced) gets
 * KW_MFA_REQUIRED from the step-up route: the request is then sent as is
 * and the server decides.
 */
import { ApiFailure, post, send } from './api.js';
import { h } from './dom.js';
import { getAssertion } from './webauthn.js';

interface StepUp {
  id: string; request: Record<string, unknown>; expires_at: string; operation: string;
  factors: { id: string; kind: string; name: string }[]; webauthn: Record<string, unknown> | null;
}

export type Answer = { webauthn: Record<string, unknown> } | { code: string };

/**
 * A modal dialog showing exactly what is about to be signed, with a WebAuthn
 * button (when `webauthn` options are given) and/or a TOTP code field.
 * Resolves with the answer; rejects with "cancelled".
 */
export function confirmWithFactor(opts: {
  title: string; intro: string; request: unknown; hash: string; expiresAt?: string;
  webauthn: Record<string, unknown> | null; allowCode: boolean; confirmLabel?: string;
}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const status = h('p', { role: 'alert', class: 'error', id: 'factor-status' });
    const code = h('input', { id: 'factor-code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: '6' });
    const close = (fn: () => void) => { dialog.close(); dialog.remove(); fn(); };
    const useKey = opts.webauthn === null ? null : h('button', { type: 'button', id: 'factor-webauthn', onclick: () => {
      status.textContent = 'Touch your security key…';
      getAssertion(opts.webauthn!).then((a) => close(() => resolve({ webauthn: a })), (e: unknown) => { status.textContent = `The security key did not answer: ${String(e)}`; });
    } }, opts.confirmLabel ?? 'Confirm with security key');
    const useCode = !opts.allowCode ? null : h('form', { class: 'inline', onsubmit: (ev) => {
      ev.preventDefault();
      if (!/^[0-9]{6}$/.test(code.value)) { status.textContent = 'Enter the 6-digit code.'; code.focus(); return; }
      close(() => resolve({ code: code.value }));
    } }, h('div', { class: 'field' }, h('label', { for: 'factor-code' }, 'Authenticator app code'), code), h('button', { type: 'submit' }, 'Confirm with code'));
    const dialog = h('dialog', { id: 'factor-dialog', 'aria-labelledby': 'factor-title', 'aria-describedby': 'factor-intro' },
      h('h2', { id: 'factor-title' }, opts.title),
      h('p', { id: 'factor-intro' }, opts.intro),
      h('p', {}, 'Request hash (what your authenticator signs): ', h('code', { id: 'factor-hash', class: 'wrap' }, opts.hash)),
      opts.expiresAt ? h('p', { class: 'muted' }, `Valid until ${opts.expiresAt}`) : null,
      h('pre', { id: 'factor-request', tabindex: '0', 'aria-label': 'The canonical request' }, JSON.stringify(opts.request, null, 2)),
      status,
      h('div', { class: 'actions' }, useKey, useCode,
        h('button', { type: 'button', id: 'factor-cancel', onclick: () => close(() => reject(new Error('cancelled'))) }, 'Cancel')),
    );
    dialog.addEventListener('cancel', (ev) => { ev.preventDefault(); close(() => reject(new Error('cancelled'))); });
    document.body.append(dialog);
    dialog.showModal();
    (useKey ?? code).focus();
  });
}

/**
 * Sends a sensitive request, with a step-up when the person has a second factor. `headers` go
 * with the request itself (e.g. `Keyward-Approval: <id>` to execute an approved quorum request).
 */
export async function sensitive<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<T> {
  let s: StepUp;
  try {
    s = await post<StepUp>('/v1/mfa/step-up', { method, path, ...(body !== undefined ? { body } : {}) });
  } catch (e) {
    // No factor (MFA not enforced for this person) or not a sensitive request: the server decides.
    if (e instanceof ApiFailure && (e.code === 'KW_MFA_REQUIRED' || e.code === 'KW_INVALID_ARGUMENT')) return send<T>(method, path, body, headers);
    throw e;
  }
  const answer = await confirmWithFactor({
    title: 'Confirm this request', intro: `${s.operation}: your second factor signs the hash of exactly this request, once.`,
    request: s.request, hash: s.id, expiresAt: s.expires_at, webauthn: s.webauthn, allowCode: s.factors.some((f) => f.kind === 'totp'),
  });
  await post(`/v1/mfa/step-up/${s.id}/verify`, 'code' in answer ? { code: answer.code } : { webauthn: answer.webauthn });
  return send<T>(method, path, body, { ...headers, 'keyward-step-up': s.id });
}
