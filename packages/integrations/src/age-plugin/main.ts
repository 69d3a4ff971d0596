/**
 * `age-plugin-keyward`: the age plugin binary (docs/integrations.md §age plugin).
 *
 *   age-plugin-keyward --age-plugin=recipient-v1 | identity-v1   (started by age)
 *   age-plugin-keyward --recipient NS/NAME [--addr URL]          print an age1keyward1… recipient
 *   age-plugin-keyward --identity [--profile DIR] [--token-file FILE]   print an AGE-PLUGIN-KEYWARD-1… identity
 *
 * Standard output carries only the protocol (or the printed string); errors
 * go to the protocol as `error` commands, and to standard error.
 */
import path from 'node:path';
import { isIntegrationError } from '../errors.js';
import { encryptingSource } from './credentials.js';
import { reason, runIdentityV1, runRecipientV1, STATE_MACHINES } from './plugin.js';
import { encodeIdentity, encodeRecipient } from './strings.js';

const USAGE = `usage:
  age-plugin-keyward --recipient NS/NAME [--addr URL]
      print the age recipient (age1keyward1…) of the key service key NS/NAME (an aes256 key);
      --addr records the service address as a hint (checked against the login profile)
  age-plugin-keyward --identity [--profile DIR] [--token-file FILE]
      print the age identity (AGE-PLUGIN-KEYWARD-1…) naming this device's login profile
      (default $KEYWARD_AGE_PROFILE, else ~/.config/keyward) and bearer token file
      (default: $KEYWARD_TOKEN_FILE / $KEYWARD_TOKEN at use)
  age-plugin-keyward --age-plugin=recipient-v1|identity-v1
      the age plugin protocol (age starts the plugin this way)
`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const args = [...argv];
  const sm = args.find((a) => a.startsWith('--age-plugin='));
  try {
    if (sm !== undefined) {
      const machine = sm.slice('--age-plugin='.length);
      if (!(STATE_MACHINES as readonly string[]).includes(machine)) {
        process.stderr.write(`age-plugin-keyward: unknown state machine "${machine}" (supported: ${STATE_MACHINES.join(', ')})\n`);
        return 1;
      }
      const io = { stdin: process.stdin, stdout: process.stdout, env };
      if (machine === 'recipient-v1') await runRecipientV1(io);
      else await runIdentityV1(io);
      return 0;
    }
    if (args.includes('--help') || args.includes('-h') || args.length === 0) {
      process.stdout.write(USAGE);
      return args.length === 0 ? 2 : 0;
    }
    if (args[0] === '--recipient') {
      args.shift();
      const addr = flag(args, '--addr');
      const keyRef = args.shift();
      if (keyRef === undefined || args.length > 0) throw new Error('give one key reference NS/NAME');
      process.stdout.write(`${encodeRecipient({ keyRef, ...(addr !== undefined ? { address: addr } : {}) })}\n`);
      return 0;
    }
    if (args[0] === '--identity') {
      args.shift();
      const profile = flag(args, '--profile');
      const tokenFile = flag(args, '--token-file');
      if (args.length > 0) throw new Error(`unexpected argument ${args[0]}`);
      const dir = profile !== undefined ? path.resolve(profile) : (await encryptingSource({ ...env, KEYWARD_AGE_IDENTITY: undefined })).profile;
      const id = encodeIdentity({ profile: dir, ...(tokenFile !== undefined ? { tokenFile: path.resolve(tokenFile) } : {}) });
      process.stdout.write(`# keyward identity: profile ${dir}${tokenFile !== undefined ? `, token file ${path.resolve(tokenFile)}` : ''} (paths only, no secret)\n${id}\n`);
      return 0;
    }
    process.stderr.write(USAGE);
    return 2;
  } catch (e) {
    process.stderr.write(`age-plugin-keyward: ${isIntegrationError(e) ? `error[${e.code}] ` : ''}${reason(e)}\n`);
    return 1;
  }
}
