/**
 * `@popkit/dpop-client/internal`: helpers shared by popkit's own packages. Not part of the
 * public API: it may change in any release.
 * @packageDocumentation
 * @internal
 */
export { closest, editDistance, unknownOption } from './options.ts';
export type { OptionNames, UnknownOption } from './options.ts';
