/** Health page arithmetic: route families, histogram quantiles, per-family rate and p50/p99 between two scrapes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { histogramQuantile, parseMetrics, routeFamily, routeStats } from '../src/lib/metrics.js';

void test('routeFamily keeps /v1 and the next segment', () => {
  assert.equal(routeFamily('/v1/keys/:ns/:name/rotate'), '/v1/keys');
  assert.equal(routeFamily('/v1/sys/health'), '/v1/sys');
  assert.equal(routeFamily('/metrics'), '/metrics');
});

void test('histogramQuantile interpolates inside the bucket, null without observations, last finite bound for +Inf', () => {
  const b = [{ le: 0.01, count: 50 }, { le: 0.1, count: 90 }, { le: 1, count: 100 }, { le: Infinity, count: 100 }];
  assert.equal(histogramQuantile(0.5, b), 0.01);
  assert.ok(Math.abs(histogramQuantile(0.7, b)! - 0.055) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.99, b)! - 0.91) < 1e-12);
  assert.equal(histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: Infinity, count: 0 }]), null);
  assert.equal(histogramQuantile(0.99, [{ le: 1, count: 0 }, { le: Infinity, count: 4 }]), 1);
});

void test('routeStats: differences between two scrapes, per family, busiest first; idle families left out', () => {
  const scrape = (keys: [number, number, number], sys: number) => parseMetrics([
    `keyward_http_request_duration_seconds_bucket{le="0.01",route="/v1/keys/:ns",method="GET",status="200"} ${keys[0]}`,
    `keyward_http_request_duration_seconds_bucket{le="0.1",route="/v1/keys/:ns",method="GET",status="200"} ${keys[1]}`,
    `keyward_http_request_duration_seconds_bucket{le="+Inf",route="/v1/keys/:ns",method="GET",status="200"} ${keys[2]}`,
    `keyward_http_request_duration_seconds_count{route="/v1/keys/:ns",method="GET",status="200"} ${keys[2]}`,
    `keyward_http_request_duration_seconds_bucket{le="0.01",route="/v1/sys/health",method="GET",status="200"} ${sys}`,
    `keyward_http_request_duration_seconds_bucket{le="0.1",route="/v1/sys/health",method="GET",status="200"} ${sys}`,
    `keyward_http_request_duration_seconds_bucket{le="+Inf",route="/v1/sys/health",method="GET",status="200"} ${sys}`,
    `keyward_http_request_duration_seconds_count{route="/v1/sys/health",method="GET",status="200"} ${sys}`,
  ].join('\n'));
  const stats = routeStats(scrape([100, 100, 100], 7), scrape([110, 120, 120], 7), 5);
  assert.equal(stats.length, 1);
  const [k] = stats;
  assert.deepEqual([k!.family, k!.rate, k!.p50], ['/v1/keys', 4, 0.01]);
  assert.ok(Math.abs(k!.p99! - 0.0982) < 1e-9, String(k!.p99));
});
