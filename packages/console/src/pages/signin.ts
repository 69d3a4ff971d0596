/**
 * Sign-in: a token pasted into the form is POSTed once to
 * /v1/console/session and forgotten; the server answers with an HttpOnly
 * session cookie. The token never goes to localStorage or sessionStorage.
 */
import { ApiFailure, signIn, type Session } from '../lib/api.js';
import { h } from '../lib/dom.js';

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
    signIn(value, Number(ttl.value)).then(done, (e: unknown) => {
      button.disabled = false;
      status.textContent = e instanceof ApiFailure ? `${e.message} (${e.code})` : String(e);
      token.focus();
    });
  });
  main.replaceChildren(
    h('h1', { tabindex: '-1' }, 'Sign in'),
    status,
    form,
    h('p', { class: 'muted' }, 'A WebAuthn second factor at sign-in arrives with the MFA API (issue #7). ', h('a', { href: '/console/seal' }, 'The seal demo'), ' needs no sign-in.'),
  );
  token.focus();
}
