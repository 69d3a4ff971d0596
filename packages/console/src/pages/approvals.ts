/**
 * Approvals inbox (docs/mfa.md §Quorum approval): the quorum requests this
 * person may answer (GET /v1/approvals?state=pending, then GET
 * /v1/approvals/{id} for each: the canonical request, the tally per rule and
 * what to sign). Approving or denying shows the exact canonical request and
 * the signed message (`keyward/v1 approval\n<decision>\n<id>`, id = the
 * request hash), then has the person's approval key — a WebAuthn credential
 * of the signed governance snapshot — sign SHA-256 of that message
 * (POST /v1/approvals/{id}/approve | deny { kind: "webauthn", response }).
 * The requester sees their own requests with **Execute** (once approved: the
 * request sent again with `Keyward-Approval: <id>`, and a step-up) and
 * **Cancel request** (POST /v1/approvals/{id}/cancel).
 */
import type { Page } from '../main.js';
import { ApiFailure, get, post } from '../lib/api.js';
import { h, mark, when } from '../lib/dom.js';
import { confirmWithFactor, sensitive } from '../lib/step-up.js';

interface Detail {
  id: string; operation: string; requester: string; state: string; request: Record<string, unknown>;
  rules: { op: string; role: string; threshold: number }[]; created: string; expires_at: string;
  answers?: { approver: string; decision: string; kind: string; key_id: string; created: string }[];
  tally?: { op: string; approved_by: string[]; denied_by: string[]; satisfied: boolean }[];
  sign?: { approve: string; deny: string; webauthn: { approve: string; deny: string; rp_id: string; allow_credentials: string[] } };
}

function utf8OfB64u(s: string): string {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(b, (c) => c.charCodeAt(0)));
}

export const approvalsPage: Page = (main, session) => {
  const status = h('p', { role: 'status', id: 'approvals-status', class: 'muted' }, 'Loading pending requests…');
  const list = h('div', { id: 'approvals-list' });
  main.append(
    h('h1', { tabindex: '-1' }, 'Approvals'),
    h('p', {}, 'Quorum requests waiting for approvers. Each shows the exact canonical request: its SHA-256 is the request id, and your approval key signs that id with your decision.'),
    status, list);

  const satisfied = (d: Detail) => (d.tally ?? []).length > 0 && d.tally!.every((t) => t.satisfied);

  /**
   * The requester's own request: others approve it; once every rule is satisfied the requester
   * executes it — the very request, sent again with `Keyward-Approval: <id>` (and a step-up when
   * it is a sensitive one) — or withdraws it (POST /v1/approvals/{id}/cancel).
   */
  const own = (d: Detail, result: HTMLElement) => {
    const fail = (e: unknown) => {
      result.setAttribute('role', 'alert');
      result.textContent = e instanceof ApiFailure ? `Refused: ${e.message} (${e.code})` : String(e);
    };
    const execute = async () => {
      const r = d.request as { method?: string; path?: string; body?: Record<string, unknown> | null };
      if ((r.method !== 'POST' && r.method !== 'PUT' && r.method !== 'DELETE') || typeof r.path !== 'string') return fail(new Error('this request cannot be sent from the console'));
      try {
        await sensitive(r.method, r.path, r.body ?? undefined, { 'keyward-approval': d.id });
        await load(`Executed ${d.operation} (${d.id.slice(0, 8)}…).`);
      } catch (e) {
        fail(e);
      }
    };
    const cancel = async () => {
      try {
        await post(`/v1/approvals/${d.id}/cancel`, {});
        await load(`Cancelled ${d.operation} (${d.id.slice(0, 8)}…).`);
      } catch (e) {
        fail(e);
      }
    };
    return h('div', {},
      h('p', { class: 'muted' }, satisfied(d) ? 'Your own request: approved — execute it now (it runs once).' : 'Your own request: others approve it.'),
      h('div', { class: 'actions' },
        satisfied(d) ? h('button', { type: 'button', class: 'execute', onclick: () => { void execute(); } }, 'Execute') : null,
        h('button', { type: 'button', class: 'cancel-request', onclick: () => { void cancel(); } }, 'Cancel request')));
  };

  const card = (d: Detail) => {
    const result = h('p', { role: 'status', class: 'approval-result' });
    const mine = d.answers?.find((a) => a.approver === session.principal);
    const canSign = (d.sign?.webauthn.allow_credentials.length ?? 0) > 0;
    const answer = (decision: 'approve' | 'deny') => async () => {
      const w = d.sign!.webauthn;
      try {
        const a = await confirmWithFactor({
          title: decision === 'approve' ? 'Approve this request' : 'Deny this request',
          intro: `Your approval key signs SHA-256 of: ${JSON.stringify(utf8OfB64u(d.sign![decision]))}`,
          request: d.request, hash: d.id, expiresAt: d.expires_at, allowCode: false,
          webauthn: { challenge: w[decision], rpId: w.rp_id, userVerification: 'required', timeout: 120_000, allowCredentials: w.allow_credentials.map((id) => ({ id, type: 'public-key' })) },
          confirmLabel: decision === 'approve' ? 'Sign approval with security key' : 'Sign denial with security key',
        });
        if (!('webauthn' in a)) return;
        await post(`/v1/approvals/${d.id}/${decision}`, { kind: 'webauthn', response: a.webauthn });
        await load(`${decision === 'approve' ? 'Approved' : 'Denied'} ${d.operation} (${d.id.slice(0, 8)}…).`);
      } catch (e) {
        result.setAttribute('role', 'alert');
        result.textContent = e instanceof ApiFailure ? `Refused: ${e.message} (${e.code})` : String(e);
      }
    };
    return h('section', { class: 'panel approval', 'data-id': d.id, 'data-satisfied': String(satisfied(d)), 'aria-labelledby': `ap-${d.id}` },
      h('h2', { id: `ap-${d.id}` }, `${d.operation} · requested by ${d.requester}`),
      h('p', {}, 'Request id (SHA-256 of the canonical request): ', h('code', { class: 'wrap' }, d.id)),
      h('p', { class: 'muted' }, `Created ${when(d.created)} · expires ${when(d.expires_at)}`),
      h('pre', { class: 'request', tabindex: '0', 'aria-label': `Canonical request ${d.id}` }, JSON.stringify(d.request, null, 2)),
      h('ul', { class: 'plain tally' }, ...(d.tally ?? []).map((t) => {
        const rule = d.rules.find((r) => r.op === t.op);
        return h('li', {}, t.satisfied ? mark('ok', 'quorum reached') : mark('warn', 'waiting'),
          ` ${t.op}: ${t.approved_by.length} of ${rule?.threshold ?? '?'} from role ${rule?.role ?? '?'}`,
          t.approved_by.length ? ` — approved by ${t.approved_by.join(', ')}` : '', t.denied_by.length ? ` — denied by ${t.denied_by.join(', ')}` : '');
      })),
      mine ? h('p', {}, mark(mine.decision === 'approve' ? 'ok' : 'bad', `you ${mine.decision === 'approve' ? 'approved' : 'denied'} this ${when(mine.created)}`))
        : d.requester === session.principal ? own(d, result)
          : !canSign ? h('p', { class: 'muted' }, 'You have no WebAuthn approval key: enroll one on the Security page.')
            : h('div', { class: 'actions' },
              h('button', { type: 'button', onclick: () => { void answer('approve')(); } }, 'Approve'),
              h('button', { type: 'button', onclick: () => { void answer('deny')(); } }, 'Deny')),
      result);
  };

  const load = async (message?: string) => {
    try {
      const { approvals: requests } = await get<{ approvals: Detail[] }>('/v1/approvals?state=pending');
      const details = await Promise.all(requests.map((r) => get<Detail>(`/v1/approvals/${r.id}`)));
      list.replaceChildren(...details.map(card));
      status.textContent = `${message ? `${message} ` : ''}${details.length} pending request${details.length === 1 ? '' : 's'}.`;
    } catch (e) {
      status.setAttribute('role', 'alert');
      status.textContent = e instanceof ApiFailure ? `Could not load approvals: ${e.message} (${e.code})` : String(e);
    }
  };
  void load();
};
