// The default branch of `#wire-url`: runtimes with a WHATWG `URL` need no parser of their own.
import type { WireUrl } from './wire-url.ts';

/** @internal */
export const parseWireUrl: ((input: string) => WireUrl | undefined) | undefined = undefined;
