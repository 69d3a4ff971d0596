/**
 * `keyward directory …` and `keyward reseal`: the public-key directory from
 * the command line (issue #6; docs/directory.md §CLI).
 *
 * A device keeps its secret keys and its directory state in one device file
 * (JSON, mode 0600, `--device FILE`): the HPKE identity, the Ed25519 signing
 * and request-signing seeds, the identity it belongs to, the pinned log
 * configuration, the last verified tree head, the label version it last
 * checked and the device ids it expects. Keys are generated here, on the
 * device; only public keys and signatures are sent. Every answer of the
 * service is verified (`@keyward/client`'s `Directory`); a failed proof is an
 * error with its `KT_*` / `KW_DIR_*` code and nothing is written.
 */
import { chmod, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import {
  Directory,
  DirectoryRecordError,
  DirectoryServiceError,
  ENTITY_NAME,
  checkDeviceKeys,
  fetchTransport,
  generateDevice,
  safetyNumber,
  type DeviceSecrets,
  type DirectoryTransport,
} from '@keyward/client';
import { KeywardError, open, seal, parseIdentity, type KeywardErrorCode } from '@keyward/core';
import { DirectoryError, type LabelState, type VerifiedHead } from '@keyward/directory';
import { base64urlnopad } from '@scure/base';
import { defineCommand, type Command, type CommandDef } from '../../lib/command.js';
import type { FlagsSpec } from '../../lib/args.js';
import { EXIT_FAILURE, EXIT_OK, usageError } from '../../lib/errors.js';
import { readTextFile, writeAll, writeFileAtomic } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { ADDR_FLAG, TOKEN_DETAILS, TOKEN_FLAGS, addresses, call, readToken, seg } from '../../lib/service.js';
import { directoryWitnesses } from '../../lib/directory-witnesses.js';
import type { Io } from '../../lib/io.js';
import { TlogError } from '@keyward/tlog';

/** What the device file holds. */
interface DeviceFile {
  readonly v: 1;
  readonly device: DeviceSecrets;
  readonly name: string | null;
  /** The log configuration pinned at enrollment (base64url). */
  readonly pinned: string | null;
  readonly checkedVersion: number;
  readonly expected: readonly string[];
  /** The last verified head and label states (rollback and fork detection across runs). */
  readonly kt?: { readonly head?: VerifiedHead; readonly labels?: readonly LabelState[] };
}

/** JSON with bytes: a Uint8Array is written as { "b64u": "…" }. */
const bytesReplacer = (_k: string, v: unknown): unknown => (v instanceof Uint8Array ? { b64u: base64urlnopad.encode(v) } : v);
const bytesReviver = (_k: string, v: unknown): unknown =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { b64u?: unknown }).b64u === 'string'
    ? base64urlnopad.decode((v as { b64u: string }).b64u)
    : v;

/** The device file with the client's current verified state. */
const withState = (d: DeviceFile, dir: Directory): DeviceFile => ({ ...d, kt: { ...(dir.kt.head ? { head: dir.kt.head } : {}), labels: dir.kt.labels } });

/** Directory failures keep their own code on the command line (`error[KT_FORK]: …`). */
function directoryError(e: unknown): unknown {
  if (e instanceof DirectoryError || e instanceof DirectoryRecordError || e instanceof DirectoryServiceError || e instanceof TlogError) {
    return new KeywardError(e.code as KeywardErrorCode, e.message, { cause: e });
  }
  return e;
}

function defineDirectoryCommand<S extends FlagsSpec>(def: CommandDef<S>): Command {
  return defineCommand({
    ...def,
    async run(args, ctx) {
      try {
        return await def.run(args, ctx);
      } catch (e) {
        throw directoryError(e);
      }
    },
  });
}

const name = (s: string | undefined, what = 'NAME'): string => {
  if (s === undefined || !ENTITY_NAME.test(s)) usageError(`${what} must be user:NAME, service:NAME or group:NAME`);
  return s;
};

async function readDevice(file: string | undefined): Promise<DeviceFile> {
  if (file === undefined) usageError('--device FILE is required');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new KeywardError('KW_IO', `cannot read the device file '${file}'`, { cause: e });
  }
  const d = JSON.parse(text, bytesReviver) as DeviceFile;
  if (d?.v !== 1 || typeof d.device?.id !== 'string') throw new KeywardError('KW_INVALID_ARGUMENT', `'${file}' is not a keyward device file`);
  return d;
}

async function writeDevice(file: string, d: DeviceFile): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(d, bytesReplacer, 2)}\n`);
  await chmod(file, 0o600);
}

function transport(flags: { addr?: string | undefined }, io: Parameters<typeof addresses>[1], token?: string): DirectoryTransport {
  const base = addresses(flags.addr, io)[0]!;
  return fetchTransport(base.endsWith('/') ? base : `${base}/`, token !== undefined ? { token } : {});
}

/** A verifying client: the device's pinned configuration and last verified state, when given. */
async function connect(t: DirectoryTransport, d: DeviceFile | undefined, io: Pick<Io, 'env'>): Promise<Directory> {
  const client = d?.kt ? { client: { ...(d.kt.head ? { head: d.kt.head } : {}), ...(d.kt.labels ? { labels: d.kt.labels } : {}) } } : {};
  // With KEYWARD_DIRECTORY_WITNESSES, heads need k witness cosignatures (docs/witness.md §The directory).
  const witnesses = await directoryWitnesses(io);
  return Directory.connect(t, { ...(d?.pinned ? { pinned: d.pinned } : {}), ...client, ...(witnesses ? { witnesses } : {}) });
}

const DEVICE_FLAG = { device: { type: 'string', value: 'FILE', help: 'the device file (secret keys and directory state; created by enroll or approve-request, mode 0600)' } } as const;
const JSON_FLAG = { json: { type: 'boolean', help: 'print JSON' } } as const;

export const directoryEnroll = defineDirectoryCommand({
  name: 'enroll',
  summary: "generate this device's keys and enroll it as the first device of NAME with a one-time token",
  usage: ['NAME --device FILE [--id ID] [--hpke x25519|xwing] [--token-file FILE]'],
  flags: {
    ...DEVICE_FLAG, id: { type: 'string', value: 'ID', help: 'device id (default: device-1)' },
    hpke: { type: 'string', value: 'ALG', help: 'encryption key type: x25519 (default) or xwing (post-quantum hybrid)' },
    ...TOKEN_FLAGS, ...JSON_FLAG,
  },
  details: `The enrollment token (from an administrator: POST /v1/directory/enroll-tokens) is read like a bearer token.\n${TOKEN_DETAILS}`,
  examples: ['keyward directory enroll user:alice --device ~/.keyward/laptop.json --token-file enroll.txt'],
  async run({ flags, positionals }, { io, stdin }) {
    const n = name(positionals[0]);
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const file = f.device as string | undefined;
    if (file === undefined) usageError('--device FILE is required');
    if (existsSync(file)) usageError(`'${file}' exists: a device enrolls once`);
    const alg = (f.hpke as string | undefined) ?? 'x25519';
    if (alg !== 'x25519' && alg !== 'xwing') usageError('--hpke must be x25519 or xwing');
    const token = await readToken(f['token-file'] as string | undefined, io, stdin);
    const t = transport({ addr: f.addr as string | undefined }, io);
    const pinned = await Directory.configuration(t);
    const witnesses = await directoryWitnesses(io);
    const dir = await Directory.connect(t, { pinned, ...(witnesses ? { witnesses } : {}) });
    const device = await generateDevice((f.id as string | undefined) ?? 'device-1', alg);
    const r = await dir.enroll(n, token, device);
    await writeDevice(file, withState({ v: 1, device, name: n, pinned, checkedVersion: r.version, expected: [device.id] }, dir));
    if (f.json) await printJson(io.stdout, { name: n, device: device.id, version: r.version });
    else await writeAll(io.stdout, `${n}: enrolled device ${device.id} (version ${r.version})\n`);
    return EXIT_OK;
  },
});

export const directoryApproveRequest = defineDirectoryCommand({
  name: 'approve-request',
  summary: 'on a new device: generate its keys and write the approval request an existing device signs',
  usage: ['NAME --device FILE --id ID [--hpke x25519|xwing] -o REQUEST'],
  flags: {
    ...DEVICE_FLAG, id: { type: 'string', value: 'ID', help: 'the new device id' },
    hpke: { type: 'string', value: 'ALG', help: 'x25519 (default) or xwing' },
    output: { type: 'string', short: 'o', value: 'REQUEST', help: 'write the request (public keys and proof of possession) here' },
    ...ADDR_FLAG,
  },
  async run({ flags, positionals }, { io }) {
    const n = name(positionals[0]);
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const file = f.device as string | undefined;
    if (file === undefined || f.id === undefined || f.output === undefined) usageError('--device, --id and -o are required');
    if (existsSync(file)) usageError(`'${file}' exists`);
    const alg = (f.hpke as string | undefined) ?? 'x25519';
    if (alg !== 'x25519' && alg !== 'xwing') usageError('--hpke must be x25519 or xwing');
    const t = transport({ addr: f.addr as string | undefined }, io);
    const pinned = await Directory.configuration(t);
    const witnesses = await directoryWitnesses(io);
    const dir = await Directory.connect(t, { pinned, ...(witnesses ? { witnesses } : {}) });
    const device = await generateDevice(f.id as string, alg);
    const req = await dir.approvalPop(n, device);
    await writeDevice(file, withState({ v: 1, device, name: n, pinned, checkedVersion: req.version, expected: [device.id] }, dir));
    await writeFileAtomic(f.output as string, `${JSON.stringify({ name: n, ...req }, null, 2)}\n`);
    await writeAll(io.stdout, `${n}: approval request for ${device.id} written to ${f.output as string}; approve it from an existing device (keyward directory approve)\n`);
    return EXIT_OK;
  },
});

export const directoryApprove = defineDirectoryCommand({
  name: 'approve',
  summary: 'on an existing device: approve (sign) a new device of the same identity',
  usage: ['REQUEST --device FILE [--json]'],
  flags: { ...DEVICE_FLAG, ...ADDR_FLAG, ...JSON_FLAG },
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length !== 1) usageError('approve takes the request file');
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const me = await readDevice(f.device as string | undefined);
    const req = JSON.parse(await readTextFile(positionals[0]!, io, stdin, 'the approval request')) as { name: string; keys: unknown; version: number; at: number; pop: string };
    if (req.name !== me.name) usageError(`the request is for ${req.name}, this device belongs to ${me.name ?? 'nothing'}`);
    const keys = checkDeviceKeys(req.keys);
    const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
    const r = await dir.approve(req.name, me.device, keys, req);
    await writeDevice(f.device as string, withState({ ...me, expected: [...new Set([...me.expected, keys.id])], checkedVersion: r.version }, dir));
    if (f.json) await printJson(io.stdout, { name: req.name, device: keys.id, version: r.version });
    else await writeAll(io.stdout, `${req.name}: approved device ${keys.id} (version ${r.version})\n`);
    return EXIT_OK;
  },
});

export const directoryRevoke = defineDirectoryCommand({
  name: 'revoke',
  summary: 'revoke a device: signed by this device (--device), or as an administrator (--admin)',
  usage: ['NAME DEVICE_ID --device FILE', 'NAME DEVICE_ID --admin [--token-file FILE]'],
  flags: { ...DEVICE_FLAG, admin: { type: 'boolean', help: 'revoke as an administrator (admin bearer token)' }, ...TOKEN_FLAGS, ...JSON_FLAG },
  details: TOKEN_DETAILS,
  async run({ flags, positionals }, { io, stdin }) {
    const n = name(positionals[0]);
    const id = positionals[1];
    if (id === undefined || positionals.length !== 2) usageError('revoke takes NAME DEVICE_ID');
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    let version: number;
    if (f.admin) {
      const token = await readToken(f['token-file'] as string | undefined, io, stdin);
      version = (await call<{ version: number }>({ addresses: addresses(f.addr as string | undefined, io), token }, 'DELETE', `/v1/directory/identities/${seg(n)}/devices/${seg(id)}`)).version;
    } else {
      const me = await readDevice(f.device as string | undefined);
      const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
      version = (await dir.revoke(n, id, me.device)).version;
      await writeDevice(f.device as string, withState({ ...me, expected: me.expected.filter((x) => x !== id), checkedVersion: version }, dir));
    }
    if (f.json) await printJson(io.stdout, { name: n, device: id, version });
    else await writeAll(io.stdout, `${n}: revoked device ${id} (version ${version})\n`);
    return EXIT_OK;
  },
});

export const directoryShow = defineDirectoryCommand({
  name: 'show',
  summary: 'show the proven current devices of an identity or members of a group',
  usage: ['NAME [--device FILE] [--json]'],
  flags: { ...DEVICE_FLAG, ...ADDR_FLAG, ...JSON_FLAG },
  async run({ flags, positionals }, { io }) {
    const n = name(positionals[0]);
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const me = f.device !== undefined ? await readDevice(f.device as string) : undefined;
    const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
    if (n.startsWith('group:')) {
      const g = await dir.group(n);
      if (g === null) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `no ${n} in the directory`);
      if (f.json) await printJson(io.stdout, { name: n, members: g.members });
      else await writeAll(io.stdout, `${n}: ${g.members.join(', ') || '(no members)'}\n`);
      return EXIT_OK;
    }
    const id = await dir.identity(n);
    if (id === null) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${n} has no devices in the directory`);
    if (f.json) await printJson(io.stdout, { name: n, version: id.change.version, devices: id.devices });
    else await writeAll(io.stdout, id.devices.map((d) => `${n}\t${d.id}\t${d.hpke.alg}\tadded by ${d.addedBy}\n`).join(''));
    return EXIT_OK;
  },
});

export const directoryGroup = defineDirectoryCommand({
  name: 'group',
  summary: "set a group's members (administrator), or show it",
  usage: ['set group:NAME MEMBER... [--token-file FILE]', 'show group:NAME'],
  flags: { ...TOKEN_FLAGS, ...JSON_FLAG },
  details: TOKEN_DETAILS,
  examples: ['keyward directory group set group:auditors user:alice service:audit-bot'],
  async run({ flags, positionals }, { io, stdin }) {
    const [verb, g, ...members] = positionals;
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const n = name(g, 'group:NAME');
    if (!n.startsWith('group:')) usageError('a group name is group:NAME');
    if (verb === 'show') {
      const grp = await (await connect(transport({ addr: f.addr as string | undefined }, io), undefined, io)).group(n);
      if (grp === null) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `no ${n} in the directory`);
      if (f.json) await printJson(io.stdout, { name: n, members: grp.members });
      else await writeAll(io.stdout, `${n}: ${grp.members.join(', ') || '(no members)'}\n`);
      return EXIT_OK;
    }
    if (verb !== 'set') usageError('group takes set or show');
    for (const m of members) name(m, 'MEMBER');
    const token = await readToken(f['token-file'] as string | undefined, io, stdin);
    const r = await call<{ version: number }>({ addresses: addresses(f.addr as string | undefined, io), token }, 'PUT', `/v1/directory/groups/${seg(n)}`, { members });
    if (f.json) await printJson(io.stdout, { name: n, members, version: r.version });
    else await writeAll(io.stdout, `${n}: ${members.length} member(s) (version ${r.version})\n`);
    return EXIT_OK;
  },
});

export const directorySafetyNumber = defineDirectoryCommand({
  name: 'safety-number',
  summary: 'the safety number of two identities, to compare out of band',
  usage: ['NAME NAME [--json]'],
  flags: { ...DEVICE_FLAG, ...ADDR_FLAG, ...JSON_FLAG },
  async run({ flags, positionals }, { io }) {
    if (positionals.length !== 2) usageError('safety-number takes two identities');
    const [a, b] = [name(positionals[0]), name(positionals[1])];
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const me = f.device !== undefined ? await readDevice(f.device as string) : undefined;
    const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
    const [x, y] = [await dir.identity(a), await dir.identity(b)];
    if (!x || !y) throw new DirectoryRecordError('KW_DIR_RECORD_INVALID', `${!x ? a : b} has no devices in the directory`);
    const n = safetyNumber(x, y);
    if (f.json) await printJson(io.stdout, { a, b, safety_number: n });
    else await writeAll(io.stdout, `${n}\n`);
    return EXIT_OK;
  },
});

export const directoryMonitor = defineDirectoryCommand({
  name: 'monitor',
  summary: "self-monitoring: verify this device's identity and report any key it did not add (exit 1)",
  usage: ['--device FILE [--json]'],
  flags: { ...DEVICE_FLAG, ...ADDR_FLAG, ...JSON_FLAG },
  async run({ flags }, { io }) {
    const f = flags as unknown as Record<string, string | boolean | undefined>;
    const me = await readDevice(f.device as string | undefined);
    if (me.name === null) usageError('this device is not enrolled');
    const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
    const r = await dir.monitorSelf(me.name, me.expected, me.checkedVersion);
    if (f.json) await printJson(io.stdout, { name: me.name, version: r.version, unexpected: r.unexpected.map((d) => d.id), changes: r.changes });
    else {
      const lines = r.changes.map((c) => `version ${c.version}: ${c.op} ${c.device} by ${c.by}\n`);
      for (const d of r.unexpected) lines.push(`UNEXPECTED device ${d.id} (${d.hpke.alg}, added by ${d.addedBy}): this device did not add it\n`);
      await writeAll(io.stdout, lines.join('') || `${me.name}: no change since version ${me.checkedVersion}\n`);
    }
    if (r.unexpected.length > 0) {
      // The verified head is kept; the checked version is not advanced, so the report repeats until resolved.
      await writeDevice(f.device as string, withState(me, dir));
      await writeAll(io.stderr, `error[KT_UNEXPECTED_VERSION]: ${me.name} has ${r.unexpected.length} device key(s) this device did not add: ${r.unexpected.map((d) => d.id).join(', ')}\n`);
      return EXIT_FAILURE;
    }
    await writeDevice(f.device as string, withState({ ...me, checkedVersion: r.version }, dir));
    return EXIT_OK;
  },
});

/** Resolves `user:` / `service:` / `group:` names to proven HPKE recipient strings. */
export async function resolveDirectoryRecipients(names: readonly string[], addr: string | undefined, io: Parameters<typeof addresses>[1], deviceFile?: string): Promise<string[]> {
  try {
    const me = deviceFile !== undefined ? await readDevice(deviceFile) : undefined;
    const dir = await connect(transport({ addr }, io), me, io);
    return (await dir.recipients(names)).map((r) => r.toString());
  } catch (e) {
    throw directoryError(e);
  }
}

export const reseal = defineDirectoryCommand({
  name: 'reseal',
  summary: "move stored envelopes to the current devices of directory names (e.g. a group's current membership)",
  usage: ['-r NAME... --device FILE ENVELOPE...'],
  flags: {
    recipient: { type: 'string', short: 'r', multiple: true, value: 'NAME', help: 'user:NAME, service:NAME or group:NAME (repeat)' },
    ...DEVICE_FLAG, ...ADDR_FLAG, ...JSON_FLAG,
  },
  details: `Each ENVELOPE is opened here with this device's HPKE key (it must be a recipient),
then sealed again, with the same context, to every current device of the names (proven
by the directory), and replaced atomically. Members removed from a group lose access to
the resealed envelopes; copies they already hold are not affected.`,
  examples: ['keyward reseal -r group:auditors --device ~/.keyward/laptop.json reports/*.kw'],
  async run({ flags, positionals }, { io }) {
    const f = flags as unknown as Record<string, unknown>;
    const names = f.recipient as string[];
    if (names.length === 0 || positionals.length === 0) usageError('reseal needs -r NAME and at least one ENVELOPE');
    for (const n of names) name(n);
    const me = await readDevice(f.device as string | undefined);
    const identity = await parseIdentity(me.device.hpke.identity);
    const dir = await connect(transport({ addr: f.addr as string | undefined }, io), me, io);
    const recipients = await dir.recipients(names);
    const done: { file: string; recipients: number }[] = [];
    for (const file of positionals) {
      const opened = await open(new Uint8Array(await readFile(file)), { identities: [identity], anyContext: true });
      const out = await seal(opened.plaintext, { recipients, context: opened.context, aead: opened.aead });
      opened.plaintext.fill(0);
      await writeFileAtomic(file, out);
      done.push({ file, recipients: recipients.length });
    }
    if (f.json) await printJson(io.stdout, { resealed: done });
    else await writeAll(io.stdout, done.map((d) => `${d.file}: resealed to ${d.recipients} device key(s)\n`).join(''));
    return EXIT_OK;
  },
});
