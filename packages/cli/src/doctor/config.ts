/**
 * Configuration checks: the server's JSON config file (the one `keyward
 * server --config FILE` reads: `listen`, `tls_cert`, `tls_key`, `insecure`,
 * `data`, `log_file`; the programmatic spellings `tlsCert`/`tlsKey` and
 * `dev` are read too) and the address of a running service.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { fail } from '../lib/errors.js';
import { finding, type Finding } from './findings.js';

const ConfigSchema = z.object({
  listen: z.string().optional(),
  data: z.string().optional(),
  tls_cert: z.string().optional(),
  tls_key: z.string().optional(),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  insecure: z.boolean().optional(),
  dev: z.boolean().optional(),
  witnesses: z.array(z.object({ name: z.string(), url: z.string(), key: z.string() }).loose()).optional(),
  witnesses_k: z.number().int().optional(),
}).loose();

export type ServerConfigFile = z.infer<typeof ConfigSchema>;

export function readConfigFile(file: string): ServerConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(e instanceof SyntaxError ? 'KW_INVALID_ARGUMENT' : 'KW_IO', `cannot read the config file '${file}'${e instanceof SyntaxError ? ': not JSON' : ''}`, e);
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) fail('KW_INVALID_ARGUMENT', `the config file '${file}' is invalid: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** True for 127.0.0.0/8, ::1 and localhost (brackets allowed). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h);
}

const hostOf = (listen: string): string => listen.slice(0, listen.lastIndexOf(':'));

/** Findings of a server config file. */
export function configFindings(cfg: ServerConfigFile, file: string): Finding[] {
  const out: Finding[] = [];
  const listen = cfg.listen ?? '127.0.0.1:8200';
  const host = hostOf(listen);
  const tls = (cfg.tls_cert ?? cfg.tlsCert) !== undefined && (cfg.tls_key ?? cfg.tlsKey) !== undefined;
  if (cfg.dev === true) {
    out.push(finding('dev-mode', `dev mode is enabled in ${file}${isLoopbackHost(host) ? '' : ` on the non-loopback address ${listen}`}`,
      `remove "dev" from ${file}, initialize a real data directory (keyward init --data DIR) and run: keyward server --config ${file}`,
      { details: { file, listen } }));
  }
  if (!isLoopbackHost(host) && !tls) {
    out.push(finding('listener-without-tls', `${file} listens on ${listen} without TLS${cfg.insecure === true ? ' ("insecure": true)' : ''}`,
      `add "tls_cert" and "tls_key" (PEM files) to ${file} and remove "insecure", or listen on loopback behind a TLS proxy: "listen": "127.0.0.1:8200"`,
      { details: { file, listen } }));
  }
  return out;
}

/** Findings about the address of a running service. */
export function addressFindings(url: string): Finding[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [];
  }
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
    return [finding('listener-without-tls', `the service answers plain HTTP at ${u.origin}`,
      'restart it with TLS: keyward server --data DIR --listen HOST:PORT --tls-cert cert.pem --tls-key key.pem', { details: { url: u.origin } })];
  }
  return [];
}
