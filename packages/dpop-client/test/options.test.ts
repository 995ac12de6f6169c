import { describe, expect, it } from 'vitest';
import { withDPoP } from '../src/axios/index.ts';
import { loadOrCreateKeyPair } from '../src/browser/index.ts';
import { DPoPArgumentError, createDPoPFetch, generateKeyPair } from '../src/index.ts';

// A misspelt option would otherwise be ignored: `onTokenExpred` would never refresh anything.

async function argumentError(build: () => unknown): Promise<DPoPArgumentError> {
  try {
    await build();
  } catch (error) {
    expect(error).toBeInstanceOf(DPoPArgumentError);
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    return error as DPoPArgumentError;
  }
  throw new Error('no argument error was thrown');
}

describe('unknown option names are argument errors naming the closest option', () => {
  it('createDPoPFetch, withDPoP, generateKeyPair, loadOrCreateKeyPair', async () => {
    const key = await generateKeyPair();
    expect(
      (await argumentError(() => createDPoPFetch(key, { onTokenExpred: () => undefined } as never)))
        .message,
    ).toBe(
      '"options.onTokenExpred" is not an option of createDPoPFetch: did you mean "options.onTokenExpired"?',
    );
    expect(
      (await argumentError(() => createDPoPFetch(key, { learnClockOfset: false } as never)))
        .message,
    ).toMatch(/did you mean "options\.learnClockOffset"\?$/);
    const axios = {
      interceptors: { request: { use: () => 0, eject: () => undefined } },
      defaults: {},
    };
    expect(
      (
        await argumentError(() =>
          withDPoP(axios as never, key, { fetch: globalThis.fetch } as never),
        )
      ).message,
    ).toBe('"options.fetch" is not an option of withDPoP');
    expect(
      (await argumentError(() => generateKeyPair('ES256', { extractible: true } as never))).message,
    ).toBe(
      '"options.extractible" is not an option of generateKeyPair: did you mean "options.extractable"?',
    );
    expect(
      (await argumentError(() => loadOrCreateKeyPair('k', { databse: 'x' } as never))).message,
    ).toBe(
      '"options.databse" is not an option of loadOrCreateKeyPair: did you mean "options.database"?',
    );
    // known options still pass
    expect(typeof createDPoPFetch(key, { learnClockOffset: false, onEvent: () => undefined })).toBe(
      'function',
    );
  });
});
