/**
 * HPKE known answers through hpke.ts / kem.ts / kdf.ts, with `#platform` = the node adapter:
 * RFC 9180 (DHKEM(X25519, HKDF-SHA256) with AES-128-GCM, AES-256-GCM, ChaCha20Poly1305, export-only)
 * and draft-ietf-hpke-pq (X-Wing suites). web-platform.test.ts runs the same suites over web.ts.
 */
import { defineHpkePq, defineRfc9180 } from './kat-suites.js';

defineRfc9180('node');
defineHpkePq('node');
