/**
 * The console's IndexedDB database, `keyward-console`: the seal demo's
 * browser identity (store `identities`, lib/identity-store.ts) and what the
 * browser pinned about this deployment's directory (store `pins`,
 * lib/directory.ts). One open per transaction, closed after it, so a newer
 * version opened in another tab is never blocked for long.
 */

const DB = 'keyward-console';
/** Version 1 had `identities` only; version 2 adds `pins`. */
const VERSION = 2;
export type StoreName = 'identities' | 'pins';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, VERSION);
    r.onupgradeneeded = () => {
      for (const s of ['identities', 'pins'] as const) if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
    };
    r.onsuccess = () => {
      r.result.onversionchange = () => r.result.close();
      resolve(r.result);
    };
    r.onerror = () => reject(r.error ?? new Error('IndexedDB unavailable'));
  });
}

/** Runs one request in a transaction on `store` and resolves with its result once the transaction committed. */
export async function idb<T>(store: StoreName, mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = d.transaction(store, mode);
      const req = fn(t.objectStore(store));
      t.oncomplete = () => resolve(req.result as T);
      t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
      t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    d.close();
  }
}
