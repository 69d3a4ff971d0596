/** `keyward migrate`: apply pending store schema migrations (operators; the server also does it at start). */
import { EXIT_OK, usageError } from '../../lib/errors.js';
import { writeAll } from '../../lib/io.js';
import { printJson } from '../../lib/output.js';
import * as server from '../../lib/server-modules.js';
import { defineServiceCommand } from '../../lib/service.js';

const STORE_ENV = 'KEYWARD_STORE';
const DATA_ENV = 'KEYWARD_DATA';

export const migrate = defineServiceCommand({
  name: 'migrate',
  summary: 'apply pending store schema migrations (PostgreSQL or a data directory\'s SQLite file)',
  usage: ['--store postgres://… [--json]', '--data DIR [--json]'],
  flags: {
    store: { type: 'string', value: 'URL', help: `the PostgreSQL store, postgres://… (or $${STORE_ENV})` },
    data: { type: 'string', value: 'DIR', help: `a data directory whose SQLite store (keyward.db) to migrate (or $${DATA_ENV})` },
    json: { type: 'boolean', help: 'print { store, location, from, to } as JSON' },
  },
  details: `
Brings the store's schema to the version this Keyward knows, in one
transaction: on failure nothing changes (error[KW_STORE_MIGRATION_FAILED]).
A schema newer than this Keyward is refused (error[KW_STORE_SCHEMA_TOO_NEW]):
upgrade Keyward instead. Prints the versions before and after ("from 2 to 3";
"from 3 to 3" when there was nothing to do).

PostgreSQL: runs under the same advisory lock that nodes take when they
migrate at start, so it is safe while nodes run or start; nodes of an older
Keyward then refuse the newer schema. The URL's password (prefer ~/.pgpass or
$PGPASSWORD) is never printed. SQLite: the server must be stopped (the file
is migrated by whoever opens it first anyway).`,
  examples: ['keyward migrate --store postgres://keyward@db.internal/keyward', 'keyward migrate --data /var/lib/keyward --json'],
  async run({ flags, positionals }, { io }) {
    if (positionals.length > 0) usageError('migrate takes no positional arguments');
    const store = flags.store ?? (io.env[STORE_ENV] || undefined);
    const data = flags.data ?? (io.env[DATA_ENV] || undefined);
    if (store === undefined && data === undefined) usageError(`migrate needs --store postgres://… (or $${STORE_ENV}) or --data DIR (or $${DATA_ENV})`);
    if (flags.store !== undefined && flags.data !== undefined) usageError('give --store or --data, not both');
    if (store !== undefined && !/^postgres(?:ql)?:\/\//.test(store)) usageError('--store must be a postgres:// or postgresql:// URL');
    const { migrateConfiguredStore } = await server.serverModule();
    const r = await migrateConfiguredStore(store !== undefined ? { store } : { dataDir: data });
    if (flags.json) {
      await printJson(io.stdout, r);
    } else {
      await writeAll(io.stdout, `${r.store} store ${r.location}: schema ${r.from === r.to ? `already at version ${r.to}` : `migrated from version ${r.from} to ${r.to}`}\n`);
    }
    return EXIT_OK;
  },
});
