/**
 * Just enough of the Prometheus text format for the health page: sums of
 * samples by metric name, optionally filtered by labels.
 *
 * @example
 * const m = parseMetrics(text); sum(m, 'keyward_http_requests_total', (l) => l.status?.startsWith('5') ?? false)
 */
export interface Sample { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number }

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    const value = Number(m[4]);
    if (Number.isFinite(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

export function sum(samples: readonly Sample[], name: string, where: (labels: Readonly<Record<string, string>>) => boolean = () => true): number {
  let s = 0;
  for (const x of samples) if (x.name === name && where(x.labels)) s += x.value;
  return s;
}

export function has(samples: readonly Sample[], name: string): boolean {
  return samples.some((x) => x.name === name);
}

/** Route family of a metrics `route` label: `/v1/` and its next segment (`/v1/keys/:ns/:name` → `/v1/keys`). */
export function routeFamily(route: string): string {
  const m = /^(\/v1\/[^/]+|\/[^/]*)/.exec(route);
  return m ? m[1]! : route;
}

/**
 * The q-quantile (0 < q < 1) of a Prometheus histogram from its cumulative `le` buckets, interpolated linearly
 * inside the bucket like PromQL's histogram_quantile; null without observations. Above the last finite bound → that bound.
 */
export function histogramQuantile(q: number, buckets: readonly { le: number; count: number }[]): number | null {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return count === prevCount ? le : prevLe + (le - prevLe) * ((rank - prevCount) / (count - prevCount));
    }
    prevLe = le; prevCount = count;
  }
  return prevLe;
}

export interface RouteStats { family: string; rate: number; p50: number | null; p99: number | null }

/** Per route family, between two scrapes `dt` seconds apart: requests per second and p50/p99 latency (seconds). */
export function routeStats(prev: readonly Sample[], cur: readonly Sample[], dt: number): RouteStats[] {
  const acc = (s: readonly Sample[]) => {
    const m = new Map<string, { count: number; buckets: Map<number, number> }>();
    for (const x of s) {
      if (x.name !== 'keyward_http_request_duration_seconds_bucket' && x.name !== 'keyward_http_request_duration_seconds_count') continue;
      const f = routeFamily(x.labels.route ?? '');
      const e = m.get(f) ?? { count: 0, buckets: new Map<number, number>() };
      if (x.name.endsWith('_count')) e.count += x.value;
      else {
        const le = x.labels.le === '+Inf' ? Infinity : Number(x.labels.le);
        e.buckets.set(le, (e.buckets.get(le) ?? 0) + x.value);
      }
      m.set(f, e);
    }
    return m;
  };
  const a = acc(prev), b = acc(cur);
  const out: RouteStats[] = [];
  for (const [family, e] of b) {
    const p = a.get(family);
    const dc = e.count - (p?.count ?? 0);
    if (dc <= 0) continue;
    const buckets = [...e.buckets].map(([le, count]) => ({ le, count: count - (p?.buckets.get(le) ?? 0) }));
    out.push({ family, rate: dc / dt, p50: histogramQuantile(0.5, buckets), p99: histogramQuantile(0.99, buckets) });
  }
  return out.sort((x, y) => y.rate - x.rate);
}
