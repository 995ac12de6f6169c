/**
 * `@popkit/dpop-client/browser`: persistent non-extractable DPoP keys for web apps.
 * @packageDocumentation
 */
export { deleteKeyPair, loadOrCreateKeyPair } from './key-store.ts';
export type { LoadKeyPairOptions, StoredKeyPair } from './key-store.ts';
