/**
 * The console app: sign-in, then the pages (keys, audit, health and the
 * placeholders of what later issues add), routed with the History API under
 * /console/. Everything it shows comes from the public HTTP API (lib/api.ts).
 */
import { ApiFailure, currentSession, forgetSession, onSignedOut, signOut, type Session } from './lib/api.js';
import { h } from './lib/dom.js';
import { approvalsPage } from './pages/approvals.js';
import { auditPage } from './pages/audit.js';
import { directoryPage } from './pages/directory.js';
import { healthPage } from './pages/health.js';
import { keysPage } from './pages/keys.js';
import { securityPage } from './pages/security.js';
import { signInPage } from './pages/signin.js';

/** A page renders into `main` and may return a cleanup (timers). */
export type Page = (main: HTMLElement, session: Session) => (() => void) | void;

const PAGES: Record<string, { title: string; page: Page }> = {
  keys: { title: 'Keys', page: keysPage },
  audit: { title: 'Audit', page: auditPage },
  health: { title: 'Health', page: healthPage },
  directory: { title: 'Directory', page: directoryPage },
  approvals: { title: 'Approvals', page: approvalsPage },
  security: { title: 'Security', page: securityPage },
};

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;
let session: Session | null = null;
let cleanup: (() => void) | void;
let expiryTimer: number | undefined;

function routeName(): string {
  const rest = location.pathname.replace(/^\/console\/?/, '').replace(/\/+$/, '');
  return rest in PAGES ? rest : 'keys';
}

function navigate(path: string): void {
  if (location.pathname !== path) history.pushState(null, '', path);
  render();
}

function renderNav(current: string): void {
  nav.hidden = session === null;
  nav.replaceChildren(...[
    ...Object.entries(PAGES).map(([name, p]) => h('a', { href: `/console/${name}`, 'aria-current': name === current ? 'page' : null }, p.title)),
    h('a', { href: '/console/seal' }, 'Seal demo'),
  ]);
}

function renderWho(): void {
  if (session === null) { who.replaceChildren(); return; }
  const s = session;
  who.replaceChildren(
    h('span', {}, 'Signed in as ', h('strong', {}, s.principal), s.admin ? ' (admin)' : '', ' · until ', h('time', { datetime: s.expires_at }, new Date(s.expires_at).toLocaleTimeString())),
    h('button', { type: 'button', id: 'sign-out', onclick: () => { void doSignOut(); } }, 'Sign out'),
  );
}

async function doSignOut(): Promise<void> {
  try { await signOut(); } catch { /* already gone: the page is signed out either way */ }
  signedOut('You are signed out.');
}

function signedOut(message: string): void {
  session = null;
  forgetSession();
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  render(message);
}

function armExpiry(): void {
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  if (session === null) return;
  const ms = new Date(session.expires_at).getTime() - Date.now();
  expiryTimer = window.setTimeout(() => signedOut('Your session expired. Sign in again.'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
}

function render(message?: string): void {
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  const name = routeName();
  renderNav(name);
  renderWho();
  if (session === null) {
    document.title = 'Sign in — Keyward console';
    signInPage(main, message ?? null, (s) => {
      session = s;
      armExpiry();
      navigate(`/console/${routeName()}`);
    });
    return;
  }
  const p = PAGES[name]!;
  document.title = `${p.title} — Keyward console`;
  main.replaceChildren();
  cleanup = p.page(main, session);
  main.querySelector('h1')?.focus();
}

document.addEventListener('click', (ev) => {
  const a = (ev.target as Element | null)?.closest?.('a');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !/^\/console(\/(keys|audit|health|directory|approvals|security)?)?\/?$/.test(url.pathname)) return;
  ev.preventDefault();
  navigate(url.pathname);
});
window.addEventListener('popstate', () => render());
onSignedOut(() => signedOut('Your session ended (expired, signed out elsewhere, or revoked). Sign in again.'));

void (async () => {
  try {
    session = await currentSession();
    armExpiry();
    render();
  } catch (e) {
    main.replaceChildren(h('h1', { tabindex: '-1' }, 'Keyward console'), h('p', { role: 'alert' }, `The server did not answer: ${e instanceof ApiFailure ? e.message : String(e)}`));
  }
})();
