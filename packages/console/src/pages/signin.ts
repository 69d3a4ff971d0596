/**
 * Sign-in: a token pasted into the form is POSTed once to
 * /v1/console/session and forgotten; the server answers with an HttpOnly
 * session cookie. The token never goes to localStorage or sessionStorage.
 */
import { ApiFailure, signIn, type Session } from '../lib/api.js';
import { h } from '../lib/dom.js';
import { confirmWithFactor } from '../lib/step-up.js';

export function signInPage(main: HTMLElement, message: string | null, done: (s: Session) => void): void {
  const token = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const ttl = h('select', { id: 'ttl', name: 'ttl' },
    h('option', { value: '900' }, '15 minutes'), h('option', { value: '3600', selected: true }, '1 hour'), h('option', { value: '28800' }, '8 hours'));
  const status = h('p', { id: 'signin-status', role: 'alert', class: 'error' }, message ?? '');
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { id: 'signin', method: 'post', action: '/console/', novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'Access token'),
      token,
      h('p', { id: 'token-help', class: 'muted' }, 'An administrator token (kw_…). It is sent once to open a session and is not stored in the browser.')),
    h('div', { class: 'field' }, h('label', { for: 'ttl' }, 'Session length'), ttl),
    button,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = token.value.trim();
    token.value = '';
    if (value === '') { status.textContent = 'Paste a token.'; token.focus(); return; }
    button.disabled = true;
    status.textContent = '';
    const failed = (e: unknown) => {
      button.disabled = false;
      status.textContent = e instanceof ApiFailure ? `${e.message} (${e.code})` : String(e);
      token.focus();
    };
    const seconds = Number(ttl.value);
    signIn(value, seconds).then(async (r) => {
      if ('csrf' in r) { done(r); return; }
      // A second factor: the token stays in this closure only until the answer is sent.
      const answer = await confirmWithFactor({
        title: 'Second factor', intro: `${r.request.principal as string}: confirm the sign-in with your second factor. It signs this one-time sign-in challenge.`,
        request: r.request, hash: r.id, expiresAt: r.expires_at, webauthn: r.webauthn, allowCode: r.factors.some((f) => f.kind === 'totp'),
        confirmLabel: 'Use security key',
      });
      const s = await signIn(value, seconds, { id: r.id, ...answer });
      if (!('csrf' in s)) throw new Error('the server asked for a second factor again');
      done(s);
    }).catch(failed);
  });
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Sign in'),
    status,
    form,
    h('p', { class: 'muted' }, 'People with a second factor (a security key or an authenticator app) confirm the sign-in with it next. ', h('a', { href: '/console/seal' }, 'The seal demo'), ' needs no sign-in.'),
  );
  token.focus();
}
