/**
 * Prometheus metrics (prom-client), one registry per server instance:
 * request counts and latency by route and status, keyholder errors by code,
 * sealed gauge, audit log size.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'keyward_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'keyward_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['route', 'method', 'status'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly keyholderErrors = new Counter({ name: 'keyward_keyholder_errors_total', help: 'Keyholder call failures by code', labelNames: ['code'], registers: [this.registry] });
  readonly sealed = new Gauge({ name: 'keyward_sealed', help: '1 when the keyholder is sealed or down', registers: [this.registry] });
  readonly auditSize = new Gauge({ name: 'keyward_audit_events', help: 'Audit events stored and acknowledged', registers: [this.registry] });

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }
}
