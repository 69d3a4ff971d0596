/**
 * The keyholder process's options for running apart from the API (issue #8;
 * docs/tee.md §Enclave-ready keyholder), kept out of process.ts so the entry
 * point stays small:
 *
 *   --listen tcp:HOST:PORT          serve over TCP inside the attested channel (instead of --socket)
 *   --authorized-client FILE        PEM Ed25519 public key(s) of the API processes allowed to connect
 *   --evidence tpm2|command         what the keyholder proves itself with: TPM 2.0 (quote + credential activation),
 *                                   or a helper program's evidence (command-evidence.ts: Nitro NSM, SEV-SNP, TDX, SGX)
 *   --evidence-command PATH         the helper program (absolute path), with --evidence command
 *   --evidence-platform P           aws-nitro | amd-sev-snp | intel-tdx | intel-sgx, with --evidence command
 *   --evidence-timeout-ms MS        the helper's time limit (default 10000)
 *   --tpm-ak-ctx FILE               the AK context (tpm2_createak -c), TCTI from $TPM2TOOLS_TCTI
 *   --tpm-pcrs BANK:N[,N…]          the PCRs quoted (default sha256:16)
 *   --tpm-ek-handle H / --tpm-ek-chain FILE   the EK's persistent handle (0x81010001); PEM intermediates of its certificate
 *   --attest-config FILE            JSON { nitroRoots, tpmRoots, amdRoots, intelRoots } (PEM strings): the roots
 *                                   this keyholder verifies workloads' release evidence with
 *                                   (else $KEYWARD_KEYHOLDER_ATTEST, set by a server that spawns it)
 */
import { readFileSync } from 'node:fs';
import { AttestedTransport, parseAuthorizedClients } from './attested-channel.js';
import { keyholderAttestRoots, type KeyholderAttestRoots } from './ops/release-verify.js';
import { KeyholderProtocolError } from './protocol.js';
import { TcpTransport } from './tcp-transport.js';
import { Tpm2ChannelEvidence } from './tpm-evidence.js';
import { CommandChannelEvidence, type CommandEvidencePlatform } from './command-evidence.js';
import type { ChannelEvidenceProvider } from './attested-channel.js';

export const REMOTE_OPTIONS = {
  listen: { type: 'string' },
  'authorized-client': { type: 'string' },
  evidence: { type: 'string' },
  'tpm-ak-ctx': { type: 'string' },
  'tpm-pcrs': { type: 'string' },
  'tpm-ek-handle': { type: 'string' },
  'tpm-ek-chain': { type: 'string' },
  'attest-config': { type: 'string' },
  'evidence-command': { type: 'string' },
  'evidence-platform': { type: 'string' },
  'evidence-timeout-ms': { type: 'string' },
} as const;

export interface RemoteValues {
  listen?: string | undefined;
  'authorized-client'?: string | undefined;
  evidence?: string | undefined;
  'tpm-ak-ctx'?: string | undefined;
  'tpm-pcrs'?: string | undefined;
  'tpm-ek-handle'?: string | undefined;
  'tpm-ek-chain'?: string | undefined;
  'attest-config'?: string | undefined;
  'evidence-command'?: string | undefined;
  'evidence-platform'?: string | undefined;
  'evidence-timeout-ms'?: string | undefined;
}

const bad = (m: string) => new KeyholderProtocolError('KW_INVALID_ARGUMENT', m);

/** The attested TCP transport of `--listen`; throws KW_INVALID_ARGUMENT for missing or bad options. */
export function remoteTransport(v: RemoteValues, log: (msg: string, fields?: Record<string, string | number | boolean>) => void): { transport: AttestedTransport; tcp: TcpTransport; provider: ChannelEvidenceProvider; close(): void } {
  if (!v.listen) throw bad('--listen is required');
  const tcp = TcpTransport.parse(v.listen);
  if (!v['authorized-client']) throw bad('--listen needs --authorized-client FILE (the API\'s Ed25519 public key): the channel is mutually authenticated');
  const authorizedClients = parseAuthorizedClients(readFileSync(v['authorized-client'], 'utf8'));
  if (v.evidence === 'command') {
    if (!v['evidence-command'] || !v['evidence-platform']) throw bad('--evidence command needs --evidence-command PATH and --evidence-platform aws-nitro|amd-sev-snp|intel-tdx|intel-sgx');
    const timeout = v['evidence-timeout-ms'];
    if (timeout !== undefined && !/^[0-9]{1,6}$/.test(timeout)) throw bad('--evidence-timeout-ms must be a whole number of ms');
    const command = new CommandChannelEvidence({ program: v['evidence-command'], platform: v['evidence-platform'] as CommandEvidencePlatform, ...(timeout !== undefined ? { timeoutMs: Number(timeout) } : {}) });
    return { transport: new AttestedTransport(tcp, { server: { provider: command, authorizedClients, log } }), tcp, provider: command, close: () => command.close() };
  }
  if (v.evidence !== 'tpm2') throw bad('--listen needs --evidence tpm2 or --evidence command (the API verifies the keyholder before sending anything)');
  if (!v['tpm-ak-ctx']) throw bad('--evidence tpm2 needs --tpm-ak-ctx FILE');
  const provider = new Tpm2ChannelEvidence({ akContext: v['tpm-ak-ctx'], ...(v['tpm-pcrs'] ? { pcrs: v['tpm-pcrs'] } : {}), ...(v['tpm-ek-handle'] ? { ekHandle: v['tpm-ek-handle'] } : {}), ...(v['tpm-ek-chain'] ? { ekIntermediatesPem: readFileSync(v['tpm-ek-chain'], 'utf8') } : {}) });
  return { transport: new AttestedTransport(tcp, { server: { provider, authorizedClients, log } }), tcp, provider, close: () => provider.close() };
}

/** The roots for workloads' release evidence: --attest-config FILE, else $KEYWARD_KEYHOLDER_ATTEST, else the defaults. */
export function attestRootsOf(v: RemoteValues, env: NodeJS.ProcessEnv = process.env): KeyholderAttestRoots {
  let text: string | undefined;
  if (v['attest-config']) text = readFileSync(v['attest-config'], 'utf8');
  else if (env.KEYWARD_KEYHOLDER_ATTEST) text = env.KEYWARD_KEYHOLDER_ATTEST;
  if (text === undefined) return keyholderAttestRoots();
  try {
    return keyholderAttestRoots(JSON.parse(text) as unknown);
  } catch (e) {
    throw new KeyholderProtocolError('KW_INVALID_ARGUMENT', `the keyholder attest config is invalid: ${e instanceof Error ? e.message.slice(0, 300) : 'not JSON'}`);
  }
}
