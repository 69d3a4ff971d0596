/**
 * A small closed-loop HTTP load generator for `npm run bench:server`:
 * `concurrency` clients, each on its own keep-alive connection (node:http
 * Agent, one socket per client), each sending its next request as soon as
 * the previous answer has been read. Every request is built just before it
 * is sent (so a signed request gets a fresh signature and nonce); latency is
 * from the first byte written to the last byte of the answer read, the
 * request's construction (signing) excluded and reported apart as client CPU.
 */
import http from 'node:http';

/** One request to send. */
export interface BuiltRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface LoadOptions {
  readonly url: string;
  readonly concurrency: number;
  /** Measured interval, ms (after the warm-up). */
  readonly durationMs: number;
  /** Requests during this many ms first are sent but not counted. */
  readonly warmupMs: number;
  /** Builds request `i` of client `client` (signs it, for signed routes). */
  readonly build: (client: number, i: number) => BuiltRequest;
  /** Expected HTTP status (default 200); anything else counts as an error. */
  readonly status?: number;
}

export interface LoadResult {
  readonly concurrency: number;
  /** Successful requests per second over the measured interval. */
  readonly rps: number;
  readonly ok: number;
  readonly errors: number;
  /** The first few error answers, `status body`. */
  readonly errorSamples: readonly string[];
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Microseconds of this process's CPU per request (building and signing included). */
  readonly clientCpuUs: number;
}

function send(agent: http.Agent, base: URL, r: BuiltRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent, host: base.hostname, port: base.port, method: 'POST', path: r.path,
      headers: { ...r.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(r.body)) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

/** The q-quantile (0..1) of sorted values. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Runs one load level and returns its rate and latency distribution. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const base = new URL(o.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const want = o.status ?? 200;
  const latencies: number[] = [];
  const samples: string[] = [];
  let ok = 0;
  let errors = 0;
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let c0: NodeJS.CpuUsage | null = null;
  let counted = 0;

  const client = async (id: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const now = performance.now();
      if (now >= end) return;
      if (c0 === null && now >= measureFrom) c0 = process.cpuUsage();
      const r = o.build(id, i);
      const start = performance.now();
      let res: { status: number; body: string };
      try {
        res = await send(agent, base, r);
      } catch (e) {
        res = { status: 0, body: e instanceof Error ? e.message : String(e) };
      }
      const done = performance.now();
      if (start < measureFrom || done > end) continue;
      counted++;
      if (res.status === want) {
        ok++;
        latencies.push(done - start);
      } else {
        errors++;
        if (samples.length < 5) samples.push(`${res.status} ${res.body.slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => client(i)));
  const cpu = process.cpuUsage(c0 ?? undefined);
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    concurrency: o.concurrency,
    rps: ok / (o.durationMs / 1000),
    ok, errors, errorSamples: samples,
    p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN,
    clientCpuUs: counted > 0 ? (cpu.user + cpu.system) / counted : NaN,
  };
}
