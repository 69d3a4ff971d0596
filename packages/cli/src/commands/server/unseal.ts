/** `keyward unseal`: submit one unseal share, sealed end to end to the keyholder's per-boot unseal key. */
import { armor } from '@keyward/core';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { readShareText } from '../../lib/share.js';
import * as server from '../../lib/server-modules.js';
import { ADDR_FLAG, addresses, call, defineServiceCommand } from '../../lib/service.js';

interface UnsealKeyResponse { recipient?: unknown; boot?: unknown; progress?: { received?: unknown; threshold?: unknown } }
interface Health { initialized?: unknown; sealed?: unknown; keyholder?: unknown; version?: unknown }

export const unseal = defineServiceCommand({
  name: 'unseal',
  summary: 'submit an unseal share to the key service (sealed to its per-boot unseal key)',
  usage: ['--share FILE [-i IDENTITY_FILE]... [--addr URL] [--json]'],
  flags: {
    share: { type: 'string', value: 'FILE', help: 'the share file (share-N.txt), or a share sealed to you (share-N.kw.txt, needs -i); "-" = stdin' },
    identity: { type: 'string', short: 'i', multiple: true, value: 'FILE', help: 'your identity file, to open a share sealed to you at init' },
    ...ADDR_FLAG,
    insecure: { type: 'boolean', help: 'allow plain http to a non-loopback address (the share stays sealed; still not advised)' },
    json: { type: 'boolean', help: 'print { index, received, threshold, sealed } as JSON' },
  },
  details: `
The share is checked locally first (format and checksum: a damaged share is
error KW_SHARE_CORRUPTED naming its index), then sealed with the key service's
per-boot unseal recipient (GET /v1/sys/unseal-key) and the context
purpose=unseal, boot=<boot id>, and posted to /v1/sys/unseal: neither the API
process nor a TLS terminator ever sees the share. Prints the progress.`,
  examples: ['keyward unseal --share share-2.txt --addr https://kms.example.com', 'keyward unseal --share share-2.kw.txt -i ~/custodian.key'],
  async run({ flags, positionals }, { io, stdin }) {
    if (positionals.length > 0) usageError('unseal takes no positional arguments (use --share FILE)');
    if (flags.share === undefined) usageError('unseal needs --share FILE');
    const text = await readShareText(flags.share, flags.identity, io, stdin);
    const { decodeShareFile } = await server.shareFile();
    const share = decodeShareFile(text);
    const service = { addresses: addresses(flags.addr, io), token: null, insecure: flags.insecure };
    const key = await call<UnsealKeyResponse>(service, 'GET', '/v1/sys/unseal-key');
    if (typeof key.recipient !== 'string' || typeof key.boot !== 'string') fail('KW_INTERNAL', 'the unseal-key response lacks recipient or boot');
    const { sealShareForBoot } = await server.unsealKey();
    const sealed = armor(await sealShareForBoot(text, key.recipient, key.boot));
    const res = await call<{ progress?: UnsealKeyResponse['progress']; received?: unknown; threshold?: unknown; sealed?: unknown }>(service, 'POST', '/v1/sys/unseal', { share: sealed });
    const progress = res.progress ?? res;
    let isSealed = typeof res.sealed === 'boolean' ? res.sealed : null;
    if (isSealed === null) {
      try {
        const h = await call<Health>(service, 'GET', '/v1/sys/health');
        if (typeof h.sealed === 'boolean') isSealed = h.sealed;
      } catch {
        // progress is still worth printing
      }
    }
    const out = { index: share.index, received: progress.received ?? null, threshold: progress.threshold ?? null, sealed: isSealed };
    if (flags.json) await printJson(io.stdout, out);
    else {
      const status = isSealed === false ? 'the key service is unsealed' : `${out.received === null ? '?' : JSON.stringify(out.received)} of ${out.threshold === null ? '?' : JSON.stringify(out.threshold)} shares received; still sealed`;
      await writeAll(io.stdout, `share ${share.index} accepted: ${status}\n`);
    }
    return EXIT_OK;
  },
});
