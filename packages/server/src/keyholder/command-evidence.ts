/**
 * Evidence from a helper program, for a keyholder inside a Nitro Enclave,
 * an SEV-SNP or a TDX / SGX guest (issue #8; docs/tee.md §Evidence from a
 * helper program). Node cannot reach `/dev/nsm`, `/dev/sev-guest` or
 * `/dev/tdx_guest` without native code, so the keyholder runs a configured
 * program that can (e.g. a small binary over `aws-nitro-enclaves-nsm-api`,
 * `snpguest`, a TDX quote tool), and the API verifies what it prints with
 * the @keyward/attest verifier of that platform.
 *
 * Keyholder side ({@link CommandChannelEvidence}): for every proof, runs
 * `program` (no shell, no arguments, the keyholder's environment) with one
 * line of JSON on stdin
 *
 *   { "v": 1, "platform": "aws-nitro", "binding": "<hex, 32 bytes>", "reportData": "<hex, 64 bytes>" }
 *
 * and reads the evidence bytes, in the platform's native format, from
 * stdout:
 *
 *   aws-nitro     the NSM attestation document (COSE_Sign1) with `nonce` = binding
 *   amd-sev-snp   the 1184-byte report with REPORT_DATA = reportData, then the PEM VCEK and ASK (VCEK first)
 *   intel-tdx / intel-sgx   the DCAP v4 quote with REPORTDATA = reportData (its PCK chain inside)
 *
 * where reportData = binding ‖ 32 zero bytes. Exit 0 within `timeoutMs`
 * (default 10 s; the program is killed after) and at most `maxBytes` of
 * output (default 64 KiB), else the proof fails (KW_KEYHOLDER_UNAVAILABLE,
 * the channel is refused). Nothing from the program is logged except its
 * exit status and the first 200 characters of stderr.
 *
 * API side ({@link commandEvidenceVerifier}): no challenge (these formats
 * carry their own certificate chain and the binding is their freshness);
 * verifies the bytes with the platform's verifier against the configured
 * roots at `now`, expecting the binding.
 */
import { spawn } from 'node:child_process';
import { COMMAND_EVIDENCE_PLATFORMS, commandReportData, verifyCommandEvidence, type AttestationClaims, type CommandEvidencePlatform } from '@keyward/attest';
import { KeyholderProtocolError } from './protocol.js';
import type { ChannelEvidenceProvider, ChannelEvidenceVerifier } from './attested-channel.js';

// The evidence format and its verification live in @keyward/attest (command-evidence.ts), shared with
// the client's pin (@keyward/client/keyholder-evidence).
export { COMMAND_EVIDENCE_PLATFORMS, commandReportData, type CommandEvidencePlatform };

export interface CommandEvidenceOptions {
  /** Absolute path of the helper program. */
  readonly program: string;
  readonly platform: CommandEvidencePlatform;
  /** Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Largest output accepted; default 64 KiB. */
  readonly maxBytes?: number;
}

const unavailable = (m: string) => new KeyholderProtocolError('KW_KEYHOLDER_UNAVAILABLE', m.slice(0, 512));

/** The keyholder's evidence from a helper program (see the module comment). */
export class CommandChannelEvidence implements ChannelEvidenceProvider {
  readonly platform: CommandEvidencePlatform;
  readonly #o: Required<CommandEvidenceOptions>;

  constructor(o: CommandEvidenceOptions) {
    if (!(COMMAND_EVIDENCE_PLATFORMS as readonly string[]).includes(o.platform)) {
      throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `--evidence-platform must be one of ${COMMAND_EVIDENCE_PLATFORMS.join(', ')}`);
    }
    if (typeof o.program !== 'string' || !o.program.startsWith('/')) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', '--evidence-command must be an absolute path');
    const timeoutMs = o.timeoutMs ?? 10_000;
    const maxBytes = o.maxBytes ?? 64 * 1024;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', '--evidence-timeout-ms must be 1..120000');
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > 1024 * 1024) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the evidence size limit must be 1 B..1 MiB');
    this.platform = o.platform;
    this.#o = { program: o.program, platform: o.platform, timeoutMs, maxBytes };
  }

  /** Nothing to offer: the evidence carries its own certificate chain. */
  offer(): Promise<Record<string, unknown>> {
    return Promise.resolve({});
  }

  close(): void { /* nothing held */ }

  async prove(_challenge: unknown, binding: Uint8Array): Promise<Record<string, unknown>> {
    if (binding.length !== 32) throw unavailable('the evidence binding is 32 bytes');
    const input = `${JSON.stringify({ v: 1, platform: this.platform, binding: Buffer.from(binding).toString('hex'), reportData: Buffer.from(commandReportData(binding)).toString('hex') })}\n`;
    const out = await this.#run(input);
    return { evidence: out.toString('base64url') };
  }

  #run(input: string): Promise<Buffer> {
    const { program, timeoutMs, maxBytes } = this.#o;
    return new Promise((resolve, reject) => {
      const child = spawn(program, [], { stdio: ['pipe', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let size = 0;
      let stderr = '';
      let failed: Error | null = null;
      const fail = (e: Error) => { failed ??= e; child.kill('SIGKILL'); };
      const timer = setTimeout(() => fail(unavailable(`the evidence program did not finish within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      child.stdout.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) fail(unavailable(`the evidence program printed more than ${maxBytes} bytes`));
        else chunks.push(c);
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (c: string) => { if (stderr.length < 200) stderr += c.slice(0, 200 - stderr.length); });
      child.once('error', (e) => { clearTimeout(timer); reject(unavailable(`the evidence program cannot run: ${e.message}`)); });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (failed) reject(failed);
        else if (code !== 0) reject(unavailable(`the evidence program exited ${code ?? signal}: ${stderr.trim()}`));
        else if (size === 0) reject(unavailable('the evidence program printed nothing'));
        else resolve(Buffer.concat(chunks));
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    });
  }
}

/**
 * The API's verifier of helper-program evidence: `verifyCommandEvidence`
 * (@keyward/attest: the platform's verifier) with the configured roots at
 * `now`, expecting the channel binding (Nitro: the document's nonce;
 * SNP / TDX / SGX: report data = binding ‖ 0³²).
 */
export function commandEvidenceVerifier(o: { roots: { readonly nitro: readonly string[]; readonly amd: readonly string[]; readonly intel: readonly string[] }; now?: () => Date }): ChannelEvidenceVerifier {
  const now = o.now ?? (() => new Date());
  return {
    challenge(platform, offer) {
      if (!(COMMAND_EVIDENCE_PLATFORMS as readonly string[]).includes(platform)) {
        throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', `the keyholder offers ${platform} evidence, which this verifier does not check`, { details: { reason: 'ATTEST_UNSUPPORTED' } });
      }
      if (offer === null || typeof offer !== 'object' || Object.keys(offer).length !== 0) {
        throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', `a ${platform} keyholder offers nothing before its evidence`, { details: { reason: 'ATTEST_MALFORMED' } });
      }
      return {
        challenge: {},
        verify(evidence, binding): AttestationClaims {
          const e = (evidence ?? {}) as { evidence?: unknown };
          if (typeof e.evidence !== 'string' || !/^[A-Za-z0-9_-]{1,100000}$/.test(e.evidence)) {
            throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', 'the keyholder evidence is not base64url', { details: { reason: 'ATTEST_MALFORMED' } });
          }
          // AttestErrors become KW_KEYHOLDER_ATTESTATION_FAILED with the ATTEST_* code as the reason (attested-channel.ts).
          return verifyCommandEvidence(platform, Uint8Array.from(Buffer.from(e.evidence, 'base64url')), { roots: o.roots, now: now(), binding });
        },
      };
    },
  };
}

/**
 * The API's verifier for any keyholder: TPM 2.0 (challenge-response, `tpm`)
 * or helper-program evidence (`command`), by the platform the keyholder offers.
 */
export function platformChannelVerifier(tpm: ChannelEvidenceVerifier, command: ChannelEvidenceVerifier): ChannelEvidenceVerifier {
  return { challenge: (platform, offer) => (platform === 'tpm2' ? tpm : command).challenge(platform, offer) };
}
