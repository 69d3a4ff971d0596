/**
 * The two state machines of the age plugin protocol (C2SP age-plugin.md) for
 * `age-plugin-keyward`:
 *
 * - `recipient-v1` (age encrypting): phase 1 collects `add-recipient`,
 *   `add-identity` and `wrap-file-key` until `done` (anything else — grease,
 *   `extension-labels` — is ignored); phase 2 checks every recipient, loads
 *   the credentials, wraps every file key to every recipient through the key
 *   service, and only when all succeeded sends the `recipient-stanza`s (each
 *   answered `ok`); otherwise it sends `error` commands and no stanza.
 * - `identity-v1` (age decrypting): phase 1 collects `add-identity` and
 *   `recipient-stanza` until `done`; phase 2 refuses invalid identities and
 *   structurally invalid `keyward` stanzas (`error identity` / `error
 *   stanza`), ignores other stanza types, and sends `file-key` for each file
 *   it can open. A key service refusal that is not "not yours" (revoked
 *   token, disabled version, service down) is an `error identity` with the
 *   service's code, which age shows to the user; "not yours" (no grant) is a
 *   `msg`, and age goes on to its other identities.
 *
 * Messages never carry a file key, a token or key bytes.
 */
import type { Readable, Writable } from 'node:stream';
import { IntegrationError } from '../errors.js';
import { encryptingSource, loadCredentials, type PluginCredentials } from './credentials.js';
import { StanzaReader, stanzaWriter, type IpcStanza } from './ipc.js';
import { normalizeAddress, parseIdentity, parseRecipient, type KeywardAgeIdentity } from './strings.js';
import { checkStanza, STANZA_TYPE, unwrapFileKey, wrapFileKey, type AgeStanza } from './wrap.js';

export const STATE_MACHINES = ['recipient-v1', 'identity-v1'] as const;
export type StateMachine = (typeof STATE_MACHINES)[number];

export interface PluginIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Loads credentials (tests may substitute); default {@link loadCredentials}. */
  readonly load?: (source: KeywardAgeIdentity) => Promise<PluginCredentials>;
}

const protocol = (m: string): IntegrationError => new IntegrationError('KW_INT_AGE_PROTOCOL', `age plugin protocol: ${m}`);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A one-line reason for the user: the code and message, no cause chain (which never holds secrets either, but is long). */
export function reason(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : String(e);
  return typeof code === 'string' && !msg.includes(code) ? `${msg} [${code}]` : msg;
}

class Session {
  readonly reader: StanzaReader;
  readonly write: ReturnType<typeof stanzaWriter>;

  constructor(io: PluginIo) {
    this.reader = new StanzaReader(io.stdin);
    this.write = stanzaWriter(io.stdout);
  }

  /** Phase 1: every stanza until `done`. */
  async collect(): Promise<IpcStanza[]> {
    const out: IpcStanza[] = [];
    for (;;) {
      const s = await this.reader.next();
      if (s === null) throw protocol('the client closed the connection before "done"');
      if (s.type === 'done') return out;
      out.push(s);
    }
  }

  /** Sends a command of phase 2 and reads the client's response. */
  async ask(type: string, args: readonly string[] = [], body?: Uint8Array): Promise<IpcStanza> {
    await this.write(type, args, body);
    const r = await this.reader.next();
    if (r === null) throw protocol(`the client closed the connection after "${type}"`);
    return r;
  }

  async must(type: string, args: readonly string[], body?: Uint8Array): Promise<void> {
    const r = await this.ask(type, args, body);
    if (r.type !== 'ok') throw protocol(`the client answered "${r.type}" to "${type}"`);
  }

  async error(args: readonly string[], message: string): Promise<void> {
    const r = await this.ask('error', args, text(message));
    if (r.type !== 'ok') throw protocol(`the client answered "${r.type}" to "error"`);
  }

  /** A message for the user; the client may not be able to show it (`fail`, `unsupported`): fine. */
  async msg(message: string): Promise<void> {
    await this.ask('msg', [], text(message));
  }
}

export async function runRecipientV1(io: PluginIo): Promise<void> {
  const session = new Session(io);
  const recipients: string[] = [];
  const identities: string[] = [];
  const fileKeys: Uint8Array[] = [];
  for (const s of await session.collect()) {
    if (s.type === 'add-recipient') {
      if (s.args.length !== 1 || s.body.length !== 0) throw protocol('add-recipient takes one argument');
      recipients.push(s.args[0]!);
    } else if (s.type === 'add-identity') {
      if (s.args.length !== 1 || s.body.length !== 0) throw protocol('add-identity takes one argument');
      identities.push(s.args[0]!);
    } else if (s.type === 'wrap-file-key') {
      if (s.args.length !== 0 || s.body.length !== 16) throw protocol('wrap-file-key carries a 16-byte file key');
      fileKeys.push(s.body);
    }
    // Anything else: grease or a later extension (extension-labels): ignored.
  }

  const errors: { args: string[]; message: string }[] = [];
  const parsed = recipients.map((r, i) => {
    try {
      return parseRecipient(r);
    } catch (e) {
      errors.push({ args: ['recipient', String(i)], message: `keyward: invalid recipient: ${reason(e)}` });
      return null;
    }
  });
  identities.forEach((_, i) => errors.push({
    args: ['identity', String(i)],
    message: 'keyward: an identity names credentials, not a key, and cannot be encrypted to; use an age1keyward1… recipient',
  }));

  let creds: PluginCredentials | undefined;
  const stanzas: { file: number; stanza: AgeStanza }[] = [];
  try {
    if (errors.length === 0 && recipients.length > 0) {
      try {
        creds = await (io.load ?? loadCredentials)(await encryptingSource(io.env));
      } catch (e) {
        errors.push({ args: ['internal'], message: `keyward: cannot reach the key service: ${reason(e)}` });
      }
    }
    if (creds) {
      const known = new Set(creds.addresses.map((a) => normalizeAddress(a)));
      parsed.forEach((p, i) => {
        if (p?.address !== undefined && !known.has(p.address)) {
          errors.push({ args: ['recipient', String(i)], message: `keyward: the recipient's key lives on ${p.address}, which is not an address of this login profile (${creds!.addresses.join(', ')}); credentials are sent only to the profile's addresses` });
        }
      });
    }
    if (creds && errors.length === 0) {
      try {
        for (const [f, fk] of fileKeys.entries()) {
          for (const r of recipients) stanzas.push({ file: f, stanza: await wrapFileKey(creds.kms, r, fk) });
        }
      } catch (e) {
        stanzas.length = 0;
        errors.push({ args: ['internal'], message: `keyward: the key service did not wrap the file key: ${reason(e)}` });
      }
    }
  } finally {
    for (const k of fileKeys) k.fill(0);
    creds?.dispose();
  }

  if (errors.length > 0) {
    for (const e of errors) await session.error(e.args, e.message);
  } else {
    for (const { file, stanza } of stanzas) await session.must('recipient-stanza', [String(file), stanza.type, ...stanza.args], stanza.body);
  }
  await session.write('done');
}

export async function runIdentityV1(io: PluginIo): Promise<void> {
  const session = new Session(io);
  const identities: string[] = [];
  const files = new Map<number, { index: number; stanza: AgeStanza }[]>();
  let lastFile = -1;
  for (const s of await session.collect()) {
    if (s.type === 'add-identity') {
      if (s.args.length !== 1 || s.body.length !== 0) throw protocol('add-identity takes one argument');
      identities.push(s.args[0]!);
    } else if (s.type === 'recipient-stanza') {
      if (s.args.length < 2 || !/^(0|[1-9][0-9]{0,8})$/.test(s.args[0]!)) throw protocol('recipient-stanza needs a file index and a stanza type');
      const f = Number(s.args[0]);
      if (f < lastFile) throw protocol('recipient-stanza file indices must not decrease');
      lastFile = f;
      const list = files.get(f) ?? [];
      list.push({ index: list.length, stanza: { type: s.args[1]!, args: s.args.slice(2), body: s.body } });
      files.set(f, list);
    }
    // Anything else: grease, ignored.
  }

  const sources: (KeywardAgeIdentity | null)[] = identities.map((id) => {
    try {
      return parseIdentity(id);
    } catch {
      return null;
    }
  });
  const badIdentities = sources.flatMap((s, i) => (s === null ? [i] : []));
  if (badIdentities.length > 0) {
    // Structurally invalid identities: report them and unwrap nothing.
    for (const i of badIdentities) await session.error(['identity', String(i)], 'keyward: invalid AGE-PLUGIN-KEYWARD-1… identity (mistyped, truncated, or from another plugin)');
    await session.write('done');
    return;
  }

  const creds = new Map<number, PluginCredentials | IntegrationError>();
  const credsFor = async (i: number): Promise<PluginCredentials | IntegrationError> => {
    if (!creds.has(i)) {
      try {
        creds.set(i, await (io.load ?? loadCredentials)(sources[i]!));
      } catch (e) {
        creds.set(i, e instanceof IntegrationError ? e : new IntegrationError('KW_INT_CREDENTIALS', reason(e), { cause: e }));
      }
    }
    return creds.get(i)!;
  };

  try {
    for (const [f, list] of files) {
      const ours = list.filter((x) => x.stanza.type === STANZA_TYPE);
      if (ours.length === 0) continue;
      const invalidStanzas = ours.filter((x) => {
        try {
          checkStanza(x.stanza);
          return false;
        } catch {
          return true;
        }
      });
      if (invalidStanzas.length > 0) {
        for (const x of invalidStanzas) await session.error(['stanza', String(f), String(x.index)], 'keyward: malformed keyward stanza (invalid age header)');
        continue;
      }
      let fileKey: Uint8Array | null = null;
      const failures: { identity: number; message: string }[] = [];
      const refusals: string[] = [];
      search: for (let i = 0; i < sources.length; i++) {
        const c = await credsFor(i);
        if (c instanceof IntegrationError) {
          failures.push({ identity: i, message: `keyward: ${reason(c)}` });
          continue;
        }
        for (const x of ours) {
          try {
            fileKey = await unwrapFileKey(c.kms, x.stanza);
          } catch (e) {
            failures.push({ identity: i, message: `keyward: the key service refused to unwrap the file key of ${x.stanza.args[0]}: ${reason(e)}` });
            continue;
          }
          if (fileKey) break search;
          refusals.push(`${x.stanza.args[0]} (${c.lastRefusal() ?? 'no access'})`);
        }
      }
      if (fileKey) {
        await session.must('file-key', [String(f)], fileKey);
        fileKey.fill(0);
      } else if (failures.length > 0) {
        await session.error(['identity', String(failures[0]!.identity)], failures.map((x) => x.message).join('; '));
      } else if (refusals.length > 0) {
        await session.msg(`keyward: this identity may not unwrap ${refusals.join(', ')}`);
      }
    }
  } finally {
    for (const c of creds.values()) if (!(c instanceof IntegrationError)) c.dispose();
  }
  await session.write('done');
}
