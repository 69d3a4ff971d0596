/**
 * `keyward approvals list|show|request|approve|deny|enroll-key` (issue #7;
 * docs/mfa.md §Quorum approval): the CLI side of quorum approval. Approvers
 * sign with an Ed25519 approval key read from a file (PKCS#8 PEM, e.g.
 * `openssl genpkey -algorithm ed25519 -out approver.pem`), never from argv;
 * WebAuthn approvals are made in the console. What is signed is shown on
 * stderr before signing (the canonical request and the decision).
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll, type Io, type StdinClaim } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, defineServiceCommand, readToken, seg } from '../../lib/service.js';
import { STEP_UP_DETAILS, STEP_UP_FLAGS, callWithStepUp } from '../../lib/step-up.js';

const ID_RE = /^[A-Za-z0-9_-]{43}$/;
const IDENT_RE = /^[\x21-\x7e]{1,255}$/;

interface ApprovalView {
  id: string; operation: string; requester: string; state: string; request: Record<string, unknown>;
  rules: { op: string; role: string; threshold: number }[]; expires_at: string;
  tally?: { op: string; approved_by: string[]; denied_by: string[]; satisfied: boolean }[];
  sign?: { approve: string; deny: string };
}

function approvalId(positionals: readonly string[], what: string): string {
  if (positionals.length !== 1 || !ID_RE.test(positionals[0]!)) usageError(`approvals ${what} takes one approval request ID (43 base64url characters)`);
  return positionals[0]!;
}

/** The approver's Ed25519 private key from a PEM file (or stdin with "-"). */
async function readApprovalKey(file: string | undefined, io: Io, stdin: StdinClaim): Promise<KeyObject> {
  if (file === undefined) usageError('give the approval key with --key-file FILE (PKCS#8 PEM Ed25519 private key; never an argument)');
  const text = await readTextFile(file, io, stdin, 'the approval key');
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    fail('KW_INVALID_ARGUMENT', `'${file}' is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') fail('KW_INVALID_ARGUMENT', `'${file}' is not an Ed25519 key`);
  return key;
}

/** A default key id: the first 16 characters of base64url(SHA-256(public key)). */
function defaultKeyId(publicRaw: Buffer): string {
  return `ak-${createHash('sha256').update(publicRaw).digest('base64url').slice(0, 16)}`;
}

function publicRawOf(key: KeyObject): Buffer {
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
}

function summary(a: ApprovalView): string {
  const t = (a.tally ?? []).map((x) => `${x.op} ${x.approved_by.length}/${a.rules.find((r) => r.op === x.op)?.threshold ?? '?'}`).join(' ');
  return `${a.id}\t${a.state}\t${a.operation}\t${String(a.request.method)} ${String(a.request.path)}\tby ${a.requester}\tuntil ${a.expires_at}${t ? `\t${t}` : ''}`;
}

const JSON_FLAG = { json: { type: 'boolean', help: 'print the service answer as JSON' } } as const;

export const approvalsList = defineServiceCommand({
  name: 'list',
  summary: 'list approval requests (newest first)',
  usage: ['[--state pending|executed|denied|expired] [--json]'],
  flags: { state: { type: 'string', value: 'STATE', help: 'only requests in this state' }, ...TOKEN_FLAGS, ...JSON_FLAG },
  details: `GET /v1/approvals[?state=] (administrators, and members of a role a quorum rule names).\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('approvals list takes no positional arguments');
    if (flags.state !== undefined && !['pending', 'executed', 'denied', 'expired'].includes(flags.state)) usageError('--state is pending, executed, denied or expired');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<{ approvals: ApprovalView[] }>({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/approvals${flags.state ? `?state=${flags.state}` : ''}`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, res.approvals.map((a) => `${summary(a)}\n`).join(''));
    return EXIT_OK;
  },
});

export const approvalsShow = defineServiceCommand({
  name: 'show',
  summary: 'show one approval request: the exact request, its answers and the tally',
  usage: ['ID'],
  operand: ID_RE,
  flags: { ...TOKEN_FLAGS },
  details: `GET /v1/approvals/{id}. Prints JSON.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    const id = approvalId(positionals, 'show');
    const token = await readToken(flags['token-file'], io, stdin);
    await printJson(io.stdout, await call({ addresses: addresses(flags.addr, io), token }, 'GET', `/v1/approvals/${id}`));
    return EXIT_OK;
  },
});

export const approvalsRequest = defineServiceCommand({
  name: 'request',
  summary: 'ask the quorum to approve a sensitive request (prints the approval request ID)',
  usage: ['METHOD PATH [--body-file FILE] [--json]'],
  flags: { 'body-file': { type: 'string', value: 'FILE', help: 'the JSON body of the request ("-" = stdin)' }, ...TOKEN_FLAGS, ...JSON_FLAG },
  details: `POST /v1/approvals { method, path, body } (admin token). The request
then waits for the approvers; once approved, send it again with --approval ID
(e.g. keyward keys destroy NS/NAME V --yes --approval ID).\n${TOKEN_DETAILS}`,
  examples: ['keyward approvals request POST /v1/keys/billing/orders/versions/3/destroy'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 2) usageError('approvals request takes METHOD and PATH');
    const method = positionals[0]!.toUpperCase();
    if (!['POST', 'PUT', 'DELETE'].includes(method)) usageError('METHOD is POST, PUT or DELETE');
    let body: unknown;
    if (flags['body-file'] !== undefined) {
      try {
        body = JSON.parse(await readTextFile(flags['body-file'], io, stdin, 'the request body'));
      } catch (e) {
        if ((e as { code?: unknown }).code !== undefined) throw e;
        fail('KW_INVALID_ARGUMENT', `'${flags['body-file']}' is not JSON`);
      }
    }
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<ApprovalView>({ addresses: addresses(flags.addr, io), token }, 'POST', '/v1/approvals', { method, path: positionals[1], ...(body === undefined ? {} : { body }) });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${res.id}\n`);
    return EXIT_OK;
  },
});

function answerCommand(decision: 'approve' | 'deny') {
  return defineServiceCommand({
    name: decision,
    summary: decision === 'approve' ? 'approve a request: sign its hash with your approval key' : 'refuse a request (signed; it can no longer execute)',
    usage: ['ID --key-file FILE [--key-id KID] [--json]'],
    operand: ID_RE,
    flags: {
      'key-file': { type: 'string', value: 'FILE', help: 'your Ed25519 approval key (PKCS#8 PEM; "-" = stdin)' },
      'key-id': { type: 'string', value: 'KID', help: 'the id it was enrolled under (default: derived from the public key, as enroll-key does)' },
      ...TOKEN_FLAGS, ...JSON_FLAG,
    },
    details: `GET /v1/approvals/{id} to show what is signed, then POST
/v1/approvals/{id}/${decision} { kind: "ed25519", key_id, signature } where the
signature is over "keyward/v1 approval\\n${decision}\\n" + ID. The requester's own
answer does not count; each approver answers once.\n${TOKEN_DETAILS}`,
    async run({ flags, positionals }, { io, stdin }) {
      const id = approvalId(positionals, decision);
      if (flags['key-id'] !== undefined && !IDENT_RE.test(flags['key-id'])) usageError('--key-id must be printable ASCII without spaces');
      if (flags['key-file'] === '-' && flags['token-file'] === undefined && io.env.KEYWARD_TOKEN === undefined && io.env.KEYWARD_TOKEN_FILE === undefined) {
        usageError('with --key-file -, give the token with --token-file or the environment');
      }
      const key = await readApprovalKey(flags['key-file'], io, stdin);
      const token = await readToken(flags['token-file'], io, stdin);
      const opts = { addresses: addresses(flags.addr, io), token };
      const view = await call<ApprovalView>(opts, 'GET', `/v1/approvals/${id}`);
      await writeAll(io.stderr, `${decision} ${view.operation} requested by ${view.requester} (until ${view.expires_at}):\n${JSON.stringify(view.request, null, 2)}\n`);
      const message = Buffer.from(`keyward/v1 approval\n${decision}\n${id}`);
      if (view.sign && Buffer.from(view.sign[decision], 'base64url').toString() !== message.toString()) fail('KW_INTERNAL', 'the service asks to sign something else than this request id');
      const signature = sign(null, message, key).toString('base64url');
      const res = await call<ApprovalView>(opts, 'POST', `/v1/approvals/${id}/${decision}`, { kind: 'ed25519', key_id: flags['key-id'] ?? defaultKeyId(publicRawOf(key)), signature });
      if (flags.json) await printJson(io.stdout, res);
      else await writeAll(io.stdout, `${summary(res)}\n`);
      return EXIT_OK;
    },
  });
}

export const approvalsApprove = answerCommand('approve');
export const approvalsDeny = answerCommand('deny');

export const approvalsEnrollKey = defineServiceCommand({
  name: 'enroll-key',
  summary: 'enroll your Ed25519 approval key (its public half) for a principal',
  usage: ['--key-file FILE [--principal ID] [--key-id KID] [--step-up [--totp-code-file FILE]] [--approval ID] [--json]'],
  flags: {
    'key-file': { type: 'string', value: 'FILE', help: 'the Ed25519 private key (PKCS#8 PEM); only its public key is sent' },
    principal: { type: 'string', value: 'ID', help: 'whose key (default: read from the token\'s principal — give it explicitly)' },
    'key-id': { type: 'string', value: 'KID', help: 'the key id (default: derived from the public key)' },
    ...TOKEN_FLAGS, ...STEP_UP_FLAGS, ...JSON_FLAG,
  },
  details: `PUT /v1/approvers/{principal}/keys/{kid} { kind: "ed25519", public_key }.
A governance change: it takes effect only as a snapshot the keyholder signs,
after the quorum covering approvers.put (if any) approved it.\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('approvals enroll-key takes no positional arguments');
    if (flags.principal === undefined || !IDENT_RE.test(flags.principal)) usageError('give --principal ID (the person the key belongs to)');
    if (flags['key-id'] !== undefined && !IDENT_RE.test(flags['key-id'])) usageError('--key-id must be printable ASCII without spaces');
    const key = await readApprovalKey(flags['key-file'], io, stdin);
    const raw = publicRawOf(key);
    const kid = flags['key-id'] ?? defaultKeyId(raw);
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'PUT', `/v1/approvers/${seg(flags.principal)}/keys/${seg(kid)}`, { kind: 'ed25519', public_key: raw.toString('base64url') });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `approval key ${kid} enrolled for ${flags.principal}\n`);
    return EXIT_OK;
  },
});

const QUORUM_OPS = ['keys.destroy', 'keys.schedule_deletion', 'policies.put', 'principals.update', 'tokens.create_admin', 'quorum.put', 'approvers.put', 'mfa.remove'];

export const quorumList = defineServiceCommand({
  name: 'list',
  summary: 'the quorum rules in force (from the keyholder-signed governance snapshot)',
  usage: ['[--json]'],
  flags: { ...TOKEN_FLAGS, ...JSON_FLAG },
  details: `GET /v1/quorum.\n${TOKEN_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('quorum list takes no positional arguments');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await call<{ rules: { op: string; role: string; threshold: number }[] }>({ addresses: addresses(flags.addr, io), token }, 'GET', '/v1/quorum');
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, res.rules.map((r) => `${r.op}\t${r.threshold} of ${r.role}\n`).join(''));
    return EXIT_OK;
  },
});

export const quorumSet = defineServiceCommand({
  name: 'set',
  summary: 'require M of the members of a role to approve an operation',
  usage: ['OP --role ROLE --threshold M [--step-up [--totp-code-file FILE]] [--approval ID] [--json]'],
  flags: {
    role: { type: 'string', value: 'ROLE', help: 'the role whose members approve' },
    threshold: { type: 'string', value: 'M', help: 'how many distinct members (1..role size; the requester never counts)' },
    ...TOKEN_FLAGS, ...STEP_UP_FLAGS, ...JSON_FLAG,
  },
  details: `PUT /v1/quorum/{op} { role, threshold } (admin token). OP is one of
${QUORUM_OPS.join(', ')}. A quorum of 0 or of more approvers than the role
has is refused (KW_QUORUM_INVALID).\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  examples: ['keyward quorum set keys.destroy --role key-admins --threshold 2 --step-up'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !QUORUM_OPS.includes(positionals[0]!)) usageError(`quorum set takes one OP: ${QUORUM_OPS.join(', ')}`);
    if (flags.role === undefined || !IDENT_RE.test(flags.role)) usageError('give --role ROLE');
    if (flags.threshold === undefined || !/^[0-9]{1,4}$/.test(flags.threshold)) usageError('give --threshold M (a whole number)');
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'PUT', `/v1/quorum/${positionals[0]!}`, { role: flags.role, threshold: Number(flags.threshold) });
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${positionals[0]!}: ${flags.threshold} of ${flags.role}\n`);
    return EXIT_OK;
  },
});

export const quorumClear = defineServiceCommand({
  name: 'clear',
  summary: 'remove the quorum rule of an operation',
  usage: ['OP [--step-up [--totp-code-file FILE]] [--approval ID] [--json]'],
  flags: { ...TOKEN_FLAGS, ...STEP_UP_FLAGS, ...JSON_FLAG },
  details: `DELETE /v1/quorum/{op} (admin token; under the quorum covering quorum.put, if any).\n${TOKEN_DETAILS}\n${STEP_UP_DETAILS}`,
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1 || !QUORUM_OPS.includes(positionals[0]!)) usageError(`quorum clear takes one OP: ${QUORUM_OPS.join(', ')}`);
    const token = await readToken(flags['token-file'], io, stdin);
    const res = await callWithStepUp({ addresses: addresses(flags.addr, io), token }, flags, io, stdin, 'DELETE', `/v1/quorum/${positionals[0]!}`);
    if (flags.json) await printJson(io.stdout, res);
    else await writeAll(io.stdout, `${positionals[0]!}: no quorum\n`);
    return EXIT_OK;
  },
});
