/**
 * `keyward hsm verify-recovery`: submit one recovery share to a key service in
 * HSM-wrapped mode (docs/hsm.md §Recovery shares), sealed end to end to the
 * keyholder's per-boot key exactly as `keyward unseal` seals unseal shares.
 * At the threshold the keyholder rebuilds the recovery key, checks it against
 * the value recorded at init and wipes it: the quorum is proven, nothing opens.
 */
import { armor } from '@keyward/core';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { readShareText } from '../../lib/share.js';
import * as server from '../../lib/server-modules.js';
import { ADDR_FLAG, addresses, call, defineServiceCommand } from '../../lib/service.js';

interface RecoveryKey { recipient?: unknown; boot?: unknown }
interface Progress { received?: unknown; threshold?: unknown; verified?: unknown }

export const hsmVerifyRecovery = defineServiceCommand({
  name: 'verify-recovery',
  summary: 'submit a recovery share (HSM-wrapped mode); at the threshold the keyholder proves the quorum',
  usage: ['--share FILE [-i IDENTITY_FILE]... [--addr URL] [--json]'],
  flags: {
    share: { type: 'string', value: 'FILE', help: 'the recovery share file (share-N.txt), or one sealed to you (share-N.kw.txt, needs -i); "-" = stdin' },
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'your identity file, to open a share sealed to you at init' },
    ...ADDR_FLAG,
    insecure: { type: 'boolean', help: 'allow plain http to a non-loopback address (the share stays sealed)' },
    json: { type: 'boolean', help: 'print { index, received, threshold, verified } as JSON' },
  },
  details: `
In HSM-wrapped mode the key service unseals itself from its HSM; the shares
made at init are recovery shares of a separate recovery key and open nothing
without the HSM. This command checks the share locally (format, checksum),
seals it to the keyholder's per-boot key (GET /v1/sys/recovery-key, context
purpose=unseal, boot=<boot id>) and posts it to /v1/sys/recovery-share. When
the threshold is reached the keyholder rebuilds the recovery key, compares
it with the check value recorded at init (constant time), wipes it and
answers verified: true — proof that a quorum of custodians holds valid
shares, e.g. before an HSM migration. Each attempt is audited
(sys.recovery_share). Against a server not in HSM mode: KW_HSM_NOT_CONFIGURED.`,
  examples: ['keyward hsm verify-recovery --share share-2.txt --addr https://kms.example.com'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('verify-recovery takes no positional arguments (use --share FILE)');
    if (flags.share === undefined) usageError('verify-recovery needs --share FILE');
    const text = await readShareText(flags.share, flags.identity, io, stdin);
    const { decodeShareFile, sealShareForBoot } = await server.serverModule();
    const share = decodeShareFile(text);
    const service = { addresses: addresses(flags.addr, io), token: null, insecure: flags.insecure };
    const key = await call<RecoveryKey>(service, 'GET', '/v1/sys/recovery-key');
    if (typeof key.recipient !== 'string' || typeof key.boot !== 'string') fail('KW_INTERNAL', 'the recovery-key response lacks recipient or boot');
    const sealed = armor(await sealShareForBoot(text, key.recipient, key.boot));
    const res = await call<Progress>(service, 'POST', '/v1/sys/recovery-share', { share: sealed });
    const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
    const out = { index: share.index, received: num(res.received), threshold: num(res.threshold), verified: res.verified === true };
    if (flags.json) await printJson(io.stdout, out);
    else {
      await writeAll(io.stdout, out.verified
        ? `recovery share ${share.index} accepted: quorum verified (${String(out.threshold)} valid recovery shares)\n`
        : `recovery share ${share.index} accepted: ${String(out.received)} of ${String(out.threshold)} received\n`);
    }
    return EXIT_OK;
  },
});
