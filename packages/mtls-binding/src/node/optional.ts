import { MtlsArgumentError } from '../errors.ts';

/**
 * Loads an optional peer dependency of `@popkit/mtls-binding/node` on first use, so installing
 * the package for its browser-safe core pulls in no Node-only weight. A missing one is an
 * {@link MtlsArgumentError} that names the install command. @internal
 */
export async function optionalPeer<T>(name: 'node-forge' | 'undici', feature: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (cause) {
    throw new MtlsArgumentError(
      'ERR_INVALID_ARG_VALUE',
      `${feature} needs the optional peer dependency "${name}": install it (npm install ${name})`,
      { cause },
    );
  }
}
