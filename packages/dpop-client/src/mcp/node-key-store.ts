/**
 * `@popkit/dpop-client/mcp/node`: a DPoP key that survives restarts, for Node CLI and desktop
 * MCP clients. Node-only (`node:fs`, `node:crypto`).
 *
 * ## Threat model
 *
 * A DPoP key is what makes a stolen access or refresh token useless. A CLI that generates a
 * new key at every start loses its bound refresh token with it, so its key must be kept
 * somewhere; this module keeps it in one file.
 *
 * - The file is created with mode `0600` (its directory, when created here, `0700`), written
 *   atomically (a temporary file linked into place, so a crash or a concurrent start never
 *   leaves half a key and two processes agree on one key), and refused when it is readable or
 *   writable by the group or others (as OpenSSH does with private keys). That protects the key
 *   from other users of the machine, not from the user's own processes: anything that runs as
 *   the user (or as root) can read the file, just as it can read the token cache beside it.
 * - With a `passphrase` the private key is encrypted (scrypt, AES-256-GCM): a copy of the file
 *   (a backup, a synced home directory, a stolen disk) is useless without the passphrase. The
 *   passphrase must then come from somewhere safer than the file (a prompt, the OS keychain);
 *   from an environment variable of the same user it adds little.
 * - In memory, the key is a non-extractable `CryptoKey`.
 * - Where the platform offers a hardware-backed or OS-kept key (a TPM, the macOS Keychain, a
 *   cloud KMS), prefer a `DPoPSigner` over it: such a key cannot be copied at all.
 *
 * @packageDocumentation
 */
import {
  randomBytes,
  scrypt as scryptCallback,
  createCipheriv,
  createDecipheriv,
} from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DPoPAlgorithm } from '../algorithms.ts';
import { isAlgorithm } from '../algorithms.ts';
import { DPoPClientError, invalidType, invalidValue } from '../errors.ts';
import { generateKeyPair, thumbprint } from '../keys.ts';

/** Options of {@link loadOrCreateKeyFile}. */
export interface KeyFileOptions {
  /** Algorithm of a new key (see `chooseAlgorithm`). Default `ES256`. */
  alg?: DPoPAlgorithm;
  /** Encrypt the private key with this passphrase (scrypt, AES-256-GCM). */
  passphrase?: string;
}

/** Result of {@link loadOrCreateKeyFile}. */
export interface KeyFile {
  /** The key pair; its private key is non-extractable. */
  keyPair: CryptoKeyPair;
  /** The algorithm of the key. */
  alg: DPoPAlgorithm;
  /** RFC 7638 thumbprint of the public key (`dpop_jkt`, `cnf.jkt`). */
  jkt: string;
  /** `true` when this call generated the key. */
  created: boolean;
}

const FORMAT = 'popkit-dpop-key';
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

interface Stored {
  format: typeof FORMAT;
  version: 1;
  alg: DPoPAlgorithm;
  /** The public JWK (always clear: it is in every proof). */
  publicJwk: JsonWebKey;
  /** The private JWK, without a passphrase. */
  privateJwk?: JsonWebKey;
  /** The private JWK encrypted, with one. */
  encrypted?: {
    kdf: 'scrypt';
    N: number;
    r: number;
    p: number;
    salt: string;
    iv: string;
    tag: string;
    data: string;
  };
}

function storageError(message: string, cause?: unknown): DPoPClientError {
  return new DPoPClientError(
    'ERR_DPOP_STORAGE',
    message,
    cause === undefined ? undefined : { cause },
  );
}

function scrypt(passphrase: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(passphrase, salt, 32, o, (e, key) => (e ? reject(e) : resolve(key))),
  );
}

function importParams(alg: DPoPAlgorithm): EcKeyImportParams | RsaHashedImportParams | Algorithm {
  const curves: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
  if (alg.startsWith('ES')) return { name: 'ECDSA', namedCurve: curves[alg]! };
  if (alg === 'EdDSA' || alg === 'Ed25519') return { name: 'Ed25519' };
  return {
    name: alg.startsWith('PS') ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5',
    hash: `SHA-${alg.slice(2)}`,
  };
}

async function toKeyPair(stored: Stored, privateJwk: JsonWebKey): Promise<CryptoKeyPair> {
  const params = importParams(stored.alg);
  const privateKey = await crypto.subtle.importKey('jwk', privateJwk, params, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', stored.publicJwk, params, true, [
    'verify',
  ]);
  return { privateKey, publicKey };
}

async function seal(stored: Stored, privateJwk: JsonWebKey, passphrase: string): Promise<void> {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await scrypt(passphrase, salt, SCRYPT);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${FORMAT}:${stored.alg}`));
  const data = Buffer.concat([cipher.update(JSON.stringify(privateJwk), 'utf8'), cipher.final()]);
  stored.encrypted = {
    kdf: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('base64url'),
    iv: iv.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
    data: data.toString('base64url'),
  };
}

async function unseal(stored: Stored, passphrase: string | undefined): Promise<JsonWebKey> {
  const box = stored.encrypted;
  if (box === undefined) {
    if (stored.privateJwk === undefined) throw storageError('the key file holds no private key');
    return stored.privateJwk;
  }
  if (passphrase === undefined) throw storageError('the key file is encrypted: pass "passphrase"');
  if (box.kdf !== 'scrypt' || box.N > 1 << 20 || box.r > 16 || box.p > 4)
    throw storageError('the key file uses unsupported encryption parameters');
  try {
    const key = await scrypt(passphrase, Buffer.from(box.salt, 'base64url'), {
      N: box.N,
      r: box.r,
      p: box.p,
      maxmem: 256 * 1024 * 1024,
    });
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64url'));
    decipher.setAAD(Buffer.from(`${FORMAT}:${stored.alg}`));
    decipher.setAuthTag(Buffer.from(box.tag, 'base64url'));
    const text = Buffer.concat([
      decipher.update(Buffer.from(box.data, 'base64url')),
      decipher.final(),
    ]).toString('utf8');
    return JSON.parse(text) as JsonWebKey;
  } catch {
    // (no cause: it could hold key material)
    throw storageError('the key file cannot be decrypted (wrong passphrase, or damaged)');
  }
}

function parse(text: string): Stored {
  let value: Stored;
  try {
    value = JSON.parse(text) as Stored;
  } catch {
    throw storageError('the key file is not a popkit DPoP key file');
  }
  if (
    value?.format !== FORMAT ||
    value.version !== 1 ||
    !isAlgorithm(value.alg) ||
    typeof value.publicJwk !== 'object'
  ) {
    throw storageError('the key file is not a popkit DPoP key file');
  }
  return value;
}

async function load(path: string, passphrase: string | undefined): Promise<KeyFile | undefined> {
  let text: string;
  try {
    if (process.platform !== 'win32') {
      const { mode } = await stat(path);
      if ((mode & 0o077) !== 0)
        throw storageError('the key file is accessible to other users: chmod 600 it');
    }
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    if (e instanceof DPoPClientError) throw e;
    throw storageError('the key file cannot be read', e);
  }
  const stored = parse(text);
  const keyPair = await toKeyPair(stored, await unseal(stored, passphrase));
  return { keyPair, alg: stored.alg, jkt: await thumbprint(keyPair), created: false };
}

/**
 * Loads the DPoP key kept in the file at `path`, or generates one and keeps it there (mode
 * `0600`, written atomically; see the threat model above). The same `jkt` survives restarts,
 * so tokens bound to it (a refresh token above all) keep working. Concurrent first starts agree
 * on one key. A file readable by others, damaged, or encrypted with another passphrase is an
 * `ERR_DPOP_STORAGE` error, never a silently new key.
 *
 * @example
 * ```ts
 * const { keyPair } = await loadOrCreateKeyFile(join(homedir(), '.config/my-cli/dpop-key.json'));
 * ```
 */
export async function loadOrCreateKeyFile(
  path: string,
  options: KeyFileOptions = {},
): Promise<KeyFile> {
  if (typeof path !== 'string' || path.length === 0)
    throw invalidType('path', 'a non-empty string');
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object');
  const { alg = 'ES256', passphrase } = options;
  if (!isAlgorithm(alg)) throw invalidValue('options.alg', 'is not a supported DPoP algorithm');
  if (passphrase !== undefined && (typeof passphrase !== 'string' || passphrase.length === 0))
    throw invalidType('options.passphrase', 'a non-empty string');

  const existing = await load(path, passphrase);
  if (existing !== undefined) return existing;

  const generated = await generateKeyPair(alg, { extractable: true });
  const privateJwk = await crypto.subtle.exportKey('jwk', generated.privateKey);
  const publicJwk = await crypto.subtle.exportKey('jwk', generated.publicKey);
  const stored: Stored = { format: FORMAT, version: 1, alg, publicJwk };
  if (passphrase === undefined) stored.privateJwk = privateJwk;
  else await seal(stored, privateJwk, passphrase);

  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    throw storageError('the key file directory cannot be created', e);
  });
  const temporary = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    const file = await open(temporary, 'wx', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(stored)}\n`, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await link(temporary, path); // fails if another process created the key meanwhile
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      const theirs = await load(path, passphrase);
      if (theirs !== undefined) return theirs;
      throw e;
    }
  } catch (e) {
    if (e instanceof DPoPClientError) throw e;
    throw storageError('the key file cannot be written', e);
  } finally {
    await unlink(temporary).catch(() => {});
  }
  const keyPair = await toKeyPair(stored, privateJwk);
  return { keyPair, alg, jkt: await thumbprint(keyPair), created: true };
}

/**
 * Deletes the key file at `path` (log out: tokens bound to the key become useless). Missing is
 * fine.
 */
export async function deleteKeyFile(path: string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0)
    throw invalidType('path', 'a non-empty string');
  await rm(path, { force: true });
}
