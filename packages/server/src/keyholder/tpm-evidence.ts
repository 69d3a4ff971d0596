/**
 * TPM 2.0 evidence for the attested keyholder channel (attested-channel.ts;
 * docs/tee.md §Enclave-ready keyholder).
 *
 * Keyholder side ({@link Tpm2ChannelEvidence}): offers its TPM's EK
 * certificate, EK and AK public areas; answers the API's MakeCredential
 * challenge with TPM2_ActivateCredential (proving the AK lives in the TPM
 * of that EK) and quotes the configured PCRs with the channel binding as
 * extraData. It drives `tpm2-tools` (TCTI from $TPM2TOOLS_TCTI, e.g.
 * `device:/dev/tpmrm0`, or `swtpm:host=…,port=…` in tests), one command at
 * a time, flushing transient objects after each (a TPM has few slots).
 *
 * API side ({@link tpmChannelVerifier}): checks the EK certificate chain to
 * the configured TPM manufacturer roots, makes the challenge, then verifies
 * the activation and the quote (@keyward/attest) against the binding.
 *
 * What is measured: whatever the platform's measured boot extends into the
 * quoted PCRs. The keyholder never measures itself (a tampered binary would
 * extend the good value): the loader extends SHA-256 of the keyholder bundle
 * into a PCR before starting it (docs/tee.md §Reproducible keyholder builds).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { finishAkEnrollment, startAkEnrollment, verifyTpmQuote, type AttestationClaims } from '@keyward/attest';
import { z } from 'zod';
import { KeyholderProtocolError } from './protocol.js';
import type { ChannelEvidenceProvider, ChannelEvidenceVerifier } from './attested-channel.js';

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const B64u = (max: number) => z.string().max(Math.ceil((max * 4) / 3)).regex(/^[A-Za-z0-9_-]+$/).transform((s) => Uint8Array.from(Buffer.from(s, 'base64url')));
const Hex = z.string().regex(/^(?:[0-9a-f]{2}){1,64}$/);

const OfferSchema = z.strictObject({ ekCertificate: B64u(4096), ekIntermediates: z.array(B64u(4096)).max(4).optional(), ekPublic: B64u(1024), akPublic: B64u(1024) });
const ChallengeSchema = z.strictObject({ tpm2ToolsFile: B64u(2048) });
const EvidenceSchema = z.strictObject({
  activatedCredential: B64u(64), attest: B64u(1024), signature: B64u(1024),
  pcrs: z.partialRecord(z.enum(['sha1', 'sha256', 'sha384', 'sha512']), z.record(z.string().regex(/^(?:[0-9]|[12][0-9]|3[01])$/), Hex)),
});

export interface Tpm2ChannelEvidenceOptions {
  /** The AK's context file (`tpm2_createak -c`), made under the EK. */
  readonly akContext: string;
  /** The PCRs to quote, tpm2-tools syntax; default `sha256:16` (the debug PCR the test loader extends; use e.g. `sha256:0,4,7,8,9,11` on real hosts). */
  readonly pcrs?: string;
  /** The EK's persistent handle; default 0x81010001 (RSA EK). */
  readonly ekHandle?: string;
  /** The NV index of the EK certificate; default 0x1c00002 (RSA EK certificate). */
  readonly ekCertIndex?: string;
  /** TCTI; default $TPM2TOOLS_TCTI. */
  readonly tcti?: string;
  /** PEM intermediates of the EK certificate (issuer first), when the TPM's NV does not hold them. */
  readonly ekIntermediatesPem?: string;
}

/** The keyholder's TPM evidence (see the module comment). */
export class Tpm2ChannelEvidence implements ChannelEvidenceProvider {
  readonly platform = 'tpm2';
  readonly #o: Required<Omit<Tpm2ChannelEvidenceOptions, 'tcti' | 'ekIntermediatesPem'>> & { tcti: string | undefined; intermediates: string[] };
  readonly #dir = mkdtempSync(join(tmpdir(), 'keyward-kh-tpm-'));
  #queue: Promise<unknown> = Promise.resolve();
  #offer: Record<string, unknown> | null = null;

  constructor(o: Tpm2ChannelEvidenceOptions) {
    this.#o = { akContext: resolve(o.akContext), pcrs: o.pcrs ?? 'sha256:16', ekHandle: o.ekHandle ?? '0x81010001', ekCertIndex: o.ekCertIndex ?? '0x1c00002', tcti: o.tcti ?? process.env.TPM2TOOLS_TCTI, intermediates: [] };
    for (const pem of o.ekIntermediatesPem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) this.#o.intermediates.push(b64u(new X509Certificate(pem).raw));
    if (!/^(sha1|sha256|sha384|sha512):[0-9]{1,2}(,[0-9]{1,2}){0,23}$/.test(this.#o.pcrs)) throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `--tpm-pcrs ${JSON.stringify(this.#o.pcrs)} is not BANK:N[,N…]`);
  }

  /** Removes the work directory. */
  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #run(cmd: string, args: readonly string[]): Promise<string> {
    const env = { ...process.env, ...(this.#o.tcti ? { TPM2TOOLS_TCTI: this.#o.tcti } : {}) };
    return new Promise((resolveRun, reject) => {
      execFile(cmd, args, { env, cwd: this.#dir, timeout: 30_000 }, (err, stdout, stderr) => {
        execFile('tpm2_flushcontext', ['-t'], { env, cwd: this.#dir }, () => {
          if (err) reject(new Error(`${cmd} failed: ${String(stderr).slice(0, 300)}`));
          else resolveRun(String(stdout));
        });
      });
    });
  }

  /** Runs `f` after every earlier TPM job (one TPM, one job at a time). */
  #serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(f, f);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  offer(): Promise<Record<string, unknown>> {
    if (this.#offer) return Promise.resolve(this.#offer);
    return this.#serial(async () => {
      await this.#run('tpm2_nvread', [this.#o.ekCertIndex, '-o', 'ek.der']);
      await this.#run('tpm2_readpublic', ['-c', this.#o.ekHandle, '-o', 'ek.pub', '-f', 'tss']);
      await this.#run('tpm2_readpublic', ['-c', this.#o.akContext, '-o', 'ak.pub', '-f', 'tss']);
      this.#offer = {
        ekCertificate: b64u(readFileSync(join(this.#dir, 'ek.der'))),
        ...(this.#o.intermediates.length > 0 ? { ekIntermediates: this.#o.intermediates } : {}),
        ekPublic: b64u(readFileSync(join(this.#dir, 'ek.pub'))),
        akPublic: b64u(readFileSync(join(this.#dir, 'ak.pub'))),
      };
      return this.#offer;
    });
  }

  prove(challenge: unknown, binding: Uint8Array): Promise<Record<string, unknown>> {
    const c = ChallengeSchema.safeParse(challenge);
    if (!c.success) return Promise.reject(new KeyholderProtocolError('KW_INVALID_ARGUMENT', 'the TPM challenge is malformed'));
    return this.#serial(async () => {
      const tag = b64u(Uint8Array.from(Buffer.from(binding))).slice(0, 12).replace(/[^A-Za-z0-9]/g, 'x');
      const f = (n: string) => `${tag}.${n}`;
      writeFileSync(join(this.#dir, f('cred.in')), c.data.tpm2ToolsFile);
      await this.#run('tpm2_startauthsession', ['--policy-session', '-S', f('session.ctx')]);
      try {
        await this.#run('tpm2_policysecret', ['-S', f('session.ctx'), '-c', 'e']);
        await this.#run('tpm2_activatecredential', ['-c', this.#o.akContext, '-C', this.#o.ekHandle, '-i', f('cred.in'), '-o', f('cred.out'), '-P', `session:${f('session.ctx')}`]);
      } finally {
        await this.#run('tpm2_flushcontext', [f('session.ctx')]).catch(() => undefined);
      }
      const out = await this.#run('tpm2_quote', ['-c', this.#o.akContext, '-l', this.#o.pcrs, '-q', Buffer.from(binding).toString('hex'), '-m', f('msg'), '-s', f('sig'), '-g', 'sha256']);
      // The quoted values (tpm2_quote prints them as YAML: "  16: 0x…" or "  16 : 0x…"); a PCR changed since is caught by the quote's digest.
      const bank = this.#o.pcrs.split(':')[0]!;
      const values: Record<string, string> = {};
      const printed = /pcrs:[\s\S]*$/.exec(out)?.[0] ?? '';
      for (const m of printed.matchAll(/^\s*(\d{1,2})\s*:\s*0x([0-9A-Fa-f]+)\s*$/gm)) values[String(Number(m[1]))] = m[2]!.toLowerCase();
      if (Object.keys(values).length === 0) {
        const read = await this.#run('tpm2_pcrread', [this.#o.pcrs]);
        for (const m of read.matchAll(/^\s*(\d{1,2})\s*:\s*0x([0-9A-Fa-f]+)\s*$/gm)) values[String(Number(m[1]))] = m[2]!.toLowerCase();
      }
      const read = (n: string) => { const b = readFileSync(join(this.#dir, f(n))); rmSync(join(this.#dir, f(n)), { force: true }); return b; };
      const activated = read('cred.out');
      const evidence = { activatedCredential: b64u(activated), attest: b64u(read('msg')), signature: b64u(read('sig')), pcrs: { [bank]: values } };
      activated.fill(0);
      rmSync(join(this.#dir, f('cred.in')), { force: true });
      return evidence;
    });
  }
}

/**
 * The API's verifier of a keyholder's TPM evidence: EK chain to `roots`
 * (TPM manufacturer CAs) at `now`, credential activation of the offered AK,
 * then the quote over the binding.
 */
export function tpmChannelVerifier(o: { roots: readonly string[]; now?: () => Date }): ChannelEvidenceVerifier {
  const now = o.now ?? (() => new Date());
  return {
    challenge(platform, offerIn) {
      if (platform !== 'tpm2') throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', `the keyholder offers ${platform} evidence; this API verifies tpm2`, { details: { reason: 'ATTEST_UNSUPPORTED' } });
      if (o.roots.length === 0) throw new KeyholderProtocolError('KW_KEYHOLDER_ATTESTATION_FAILED', 'no TPM manufacturer roots are configured (attest.tpmRoots)', { details: { reason: 'ATTEST_UNTRUSTED_ROOT' } });
      const offer = OfferSchema.parse(offerIn);
      const { challenge, pending } = startAkEnrollment({ ekCertificate: offer.ekCertificate, ekIntermediates: offer.ekIntermediates ?? [], ekPublic: offer.ekPublic, akPublic: offer.akPublic, roots: o.roots, now: now() });
      return {
        challenge: { tpm2ToolsFile: b64u(challenge.tpm2ToolsFile) },
        verify(evidenceIn, binding): AttestationClaims {
          const e = EvidenceSchema.parse(evidenceIn);
          const ak = finishAkEnrollment(pending, e.activatedCredential);
          const pcrs: Record<string, Record<number, Uint8Array>> = {};
          for (const [bank, values] of Object.entries(e.pcrs)) if (values) pcrs[bank] = Object.fromEntries(Object.entries(values).map(([i, h]) => [Number(i), Uint8Array.from(Buffer.from(h, 'hex'))]));
          return verifyTpmQuote({ ak, attest: e.attest, signature: e.signature, pcrs, expectedNonce: binding, now: now() });
        },
      };
    },
  };
}
