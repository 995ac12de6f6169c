import type { DPoPAlgorithm } from '../algorithms.ts';
import { DPoPClientError, invalidType, invalidValue, rejectUnknownOptions } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { generateKeyPair, thumbprint } from '../keys.ts';

/** Result of {@link loadOrCreateKeyPair}. */
export interface StoredKeyPair {
  /** The key pair; its private key is non-extractable. */
  keyPair: CryptoKeyPair;
  /** RFC 7638 thumbprint of the public key (`dpop_jkt`, `cnf.jkt`). */
  jkt: string;
  /** `true` when the key lives in IndexedDB; `false` for the in-memory fallback. */
  persisted: boolean;
  /** `true` when this call generated the key. */
  created: boolean;
}

/** Options of {@link loadOrCreateKeyPair}. */
export interface LoadKeyPairOptions {
  /** Algorithm for a newly generated key. Default `ES256`. */
  alg?: DPoPAlgorithm;
  /** IndexedDB database name. Default `popkit-dpop`. */
  database?: string;
}

/** The names of {@link LoadKeyPairOptions}, for the unknown-option check. @internal */
const LOAD_OPTION_NAMES = {
  alg: true,
  database: true,
} as const satisfies OptionNames<LoadKeyPairOptions>;

const STORE = 'keys';
const DEFAULT_DB = 'popkit-dpop';
const memory = new Map<string, CryptoKeyPair>();

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function openDb(name: string): Promise<IDBDatabase> {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
  };
  return request(req);
}

async function withStore<T>(
  db: IDBDatabase,
  mode: IDBTransactionMode,
  fn: (s: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const tx = db.transaction(STORE, mode);
  const result = await request(fn(tx.objectStore(STORE)));
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
  return result;
}

function isKeyPair(value: unknown): value is CryptoKeyPair {
  const v = value as CryptoKeyPair | undefined;
  return v?.privateKey instanceof CryptoKey && v?.publicKey instanceof CryptoKey;
}

async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks?.request) return fn();
  return locks.request(`popkit-dpop:${name}`, { mode: 'exclusive' }, fn) as Promise<T>;
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw invalidType('name', 'a string');
  if (name.length === 0 || name.length > 256)
    throw invalidValue('name', 'must be 1 to 256 characters');
}

/**
 * Loads the DPoP key pair stored under `name`, or generates and stores one. The private key is
 * a non-extractable `CryptoKey` kept in IndexedDB (structured clone keeps it unexportable), so
 * the same `jkt` survives page reloads and bound tokens keep working. A Web Lock makes concurrent
 * calls from several tabs agree on one key. Where IndexedDB is missing or refuses (private modes,
 * Safari Lockdown, sandboxed iframes) the key lives in memory and `persisted` is `false`.
 *
 * @example
 * ```ts
 * const { keyPair, jkt, persisted } = await loadOrCreateKeyPair('my-app');
 * authorizeUrl.searchParams.set('dpop_jkt', jkt);
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9449#section-2
 */
export async function loadOrCreateKeyPair(
  name: string,
  options: LoadKeyPairOptions = {},
): Promise<StoredKeyPair> {
  checkName(name);
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
  rejectUnknownOptions(options, LOAD_OPTION_NAMES, 'loadOrCreateKeyPair');
  const database = options.database ?? DEFAULT_DB;
  const alg = options.alg ?? 'ES256';
  return withLock(name, async () => {
    let db: IDBDatabase | undefined;
    try {
      if (typeof indexedDB !== 'undefined') db = await openDb(database);
    } catch {
      db = undefined;
    }
    if (db === undefined) {
      let keyPair = memory.get(name);
      const created = keyPair === undefined;
      if (keyPair === undefined) {
        keyPair = await generateKeyPair(alg);
        memory.set(name, keyPair);
      }
      return { keyPair, jkt: await thumbprint(keyPair), persisted: false, created };
    }
    try {
      const existing: unknown = await withStore(db, 'readonly', (s) => s.get(name));
      if (isKeyPair(existing)) {
        return {
          keyPair: existing,
          jkt: await thumbprint(existing),
          persisted: true,
          created: false,
        };
      }
      const keyPair = await generateKeyPair(alg);
      await withStore(db, 'readwrite', (s) =>
        s.put({ privateKey: keyPair.privateKey, publicKey: keyPair.publicKey }, name),
      );
      return { keyPair, jkt: await thumbprint(keyPair), persisted: true, created: true };
    } catch (cause) {
      throw new DPoPClientError('ERR_DPOP_STORAGE', 'the IndexedDB key store failed', { cause });
    } finally {
      db.close();
    }
  });
}

/**
 * Deletes the key pair stored under `name` (call it on logout, so a new login binds a new key).
 * Tokens bound to the old key stop working. Resolves to whether a key was deleted.
 */
export async function deleteKeyPair(
  name: string,
  options: { database?: string } = {},
): Promise<boolean> {
  checkName(name);
  const inMemory = memory.delete(name);
  if (typeof indexedDB === 'undefined') return inMemory;
  return withLock(name, async () => {
    let db: IDBDatabase;
    try {
      db = await openDb(options.database ?? DEFAULT_DB);
    } catch {
      return inMemory;
    }
    try {
      const had = (await withStore(db, 'readonly', (s) => s.count(name))) > 0;
      await withStore(db, 'readwrite', (s) => s.delete(name));
      return had || inMemory;
    } catch (cause) {
      throw new DPoPClientError('ERR_DPOP_STORAGE', 'the IndexedDB key store failed', { cause });
    } finally {
      db.close();
    }
  });
}
