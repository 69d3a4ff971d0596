/** `keyward keyholder serve`: run the keyholder apart from the API (in a TEE), behind the attested channel (docs/tee.md). */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EXIT_OK, fail, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import { serverModule } from '../../lib/server-modules.js';
import { defineServiceCommand } from '../../lib/service.js';

export const keyholderServe = defineServiceCommand({
  name: 'serve',
  summary: 'run the keyholder on TCP behind the attested channel (in a Nitro Enclave, a confidential VM or on a TPM host)',
  usage: [
    '--listen tcp:HOST:PORT --state FILE --authorized-client FILE --evidence tpm2 --tpm-ak-ctx FILE [--tpm-pcrs BANK:N,…] [--tpm-ek-chain FILE] [--attest-config FILE] [--json]',
    '--listen tcp:HOST:PORT --state FILE --authorized-client FILE --evidence command --evidence-command PATH --evidence-platform aws-nitro|amd-sev-snp|intel-tdx|intel-sgx [--evidence-timeout-ms MS] [--attest-config FILE] [--json]',
  ],
  flags: {
    listen: { type: 'string', value: 'tcp:HOST:PORT', help: 'address to listen on (port 0 = any free port; the ready line names it)' },
    state: { type: 'string', value: 'FILE', help: "the keyholder's state file (keyholder.json; written by init over the channel)" },
    'authorized-client': { type: 'string', value: 'FILE', help: "PEM Ed25519 public key(s) of the API processes allowed to connect (their --keyholder-client-key's public half)" },
    evidence: { type: 'string', value: 'tpm2|command', help: 'how the keyholder proves what it runs: tpm2 (a TPM 2.0 quote with credential activation), or command (evidence printed by a helper program: Nitro NSM document, SEV-SNP report, TDX/SGX quote)' },
    'evidence-command': { type: 'string', value: 'PATH', help: 'with --evidence command: the helper program (gets {v, platform, binding, reportData} as JSON on stdin, prints the evidence bytes; docs/tee.md)' },
    'evidence-platform': { type: 'string', value: 'PLATFORM', help: 'with --evidence command: aws-nitro, amd-sev-snp, intel-tdx or intel-sgx' },
    'evidence-timeout-ms': { type: 'string', value: 'MS', help: "with --evidence command: the helper's time limit (default 10000)" },
    'tpm-ak-ctx': { type: 'string', value: 'FILE', help: 'the attestation key context (tpm2_createak -c …), TCTI from $TPM2TOOLS_TCTI' },
    'tpm-pcrs': { type: 'string', value: 'BANK:N,…', help: 'the PCRs to quote (default sha256:16)' },
    'tpm-ek-handle': { type: 'string', value: 'HANDLE', help: "the EK's persistent handle (default 0x81010001)" },
    'tpm-ek-chain': { type: 'string', value: 'FILE', help: "PEM intermediates of the EK certificate, when the TPM's NV does not hold them" },
    'attest-config': { type: 'string', value: 'FILE', help: 'JSON { nitroRoots, tpmRoots, amdRoots, intelRoots } (PEM strings): the roots this keyholder verifies workloads\' release evidence with' },
    json: { type: 'boolean', help: 'print { listen, pid } as JSON on stdout once listening' },
  },
  details: `
The keyholder (custody of every key, the audit frontier, attested release)
as its own process, reachable over TCP. The API ("keyward server --keyholder
tcp:HOST:PORT") verifies this process's evidence — a TPM quote whose
extraData binds the channel's fresh key — and pins its measurements before
it sends anything; the channel is then encrypted end to end, so hosts and
proxies in between (a vsock proxy for Nitro Enclaves) see ciphertext only.
Only API keys listed in --authorized-client may connect.

vsock: Node has no AF_VSOCK socket; run a vsock↔TCP proxy beside it
(socat VSOCK-LISTEN:5000,fork TCP:127.0.0.1:5000 inside the enclave, and
socat TCP-LISTEN:5000,fork VSOCK-CONNECT:<CID>:5000 on the parent, or
AWS's vsock-proxy). Measure the reproducible bundle (node
scripts/build-keyholder.mjs) into the PCRs you pin (docs/tee.md).

Logs are JSON lines on stderr. Stops on SIGINT or SIGTERM (its keys are dropped).`,
  examples: ['TPM2TOOLS_TCTI=device:/dev/tpmrm0 keyward keyholder serve --listen tcp:0.0.0.0:7300 --state /var/lib/keyward-kh/keyholder.json --authorized-client api.pub.pem --evidence tpm2 --tpm-ak-ctx ak.ctx --tpm-pcrs sha256:0,4,7,9,11'],
  async run({ flags, positionals }, { io }) {
    if (positionals.length > 0) usageError('keyholder serve takes no positional arguments');
    const command = flags.evidence === 'command';
    for (const f of ['listen', 'state', 'authorized-client', 'evidence', ...(command ? ['evidence-command', 'evidence-platform'] as const : ['tpm-ak-ctx'] as const)] as const) if (flags[f] === undefined) usageError(`keyholder serve needs --${f}`);
    if (flags.evidence !== 'tpm2' && !command) usageError('--evidence must be tpm2 or command');
    const abs = (f: string | undefined) => (f === undefined ? undefined : path.resolve(f));
    const args: string[] = ['--listen', flags.listen!, '--state', abs(flags.state)!, '--authorized-client', abs(flags['authorized-client'])!, '--evidence', flags.evidence!];
    if (command) args.push('--evidence-command', abs(flags['evidence-command'])!, '--evidence-platform', flags['evidence-platform']!, ...(flags['evidence-timeout-ms'] !== undefined ? ['--evidence-timeout-ms', flags['evidence-timeout-ms']] : []));
    else args.push('--tpm-ak-ctx', abs(flags['tpm-ak-ctx'])!);
    if (flags['tpm-pcrs'] !== undefined) args.push('--tpm-pcrs', flags['tpm-pcrs']);
    if (flags['tpm-ek-handle'] !== undefined) args.push('--tpm-ek-handle', flags['tpm-ek-handle']);
    if (flags['tpm-ek-chain'] !== undefined) args.push('--tpm-ek-chain', abs(flags['tpm-ek-chain'])!);
    if (flags['attest-config'] !== undefined) args.push('--attest-config', abs(flags['attest-config'])!);
    const entry = (await serverModule()).keyholderEntry();
    const child = spawn(process.execPath, [...entry.args, ...args], { cwd: entry.cwd, env: { ...process.env, ...io.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const ready = new Promise<string>((resolve, reject) => {
      let buf = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        void writeAll(io.stderr, chunk);
        buf += chunk;
        const m = /"msg":"ready","listen":"([^"]+)"/.exec(buf);
        if (m) resolve(m[1]!);
        if (buf.length > 65536) buf = buf.slice(-4096);
      });
      child.once('exit', (code) => reject(code === 2 ? new Error('bad arguments') : new Error(`the keyholder exited (${code ?? 'signal'})`)));
    });
    let listen: string;
    try {
      listen = await ready;
    } catch (e) {
      return fail(e instanceof Error && e.message === 'bad arguments' ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `the keyholder did not start: ${e instanceof Error ? e.message : String(e)} (its log is above)`);
    }
    if (flags.json) await printJson(io.stdout, { listen, pid: child.pid ?? null });
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 0)));
    const stop = () => { child.kill('SIGTERM'); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const code = await exited;
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    return code === 0 ? EXIT_OK : fail('KW_IO', `the keyholder exited with ${code}`);
  },
});
