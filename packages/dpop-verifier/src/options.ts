/**
 * Unknown option names are configuration errors. A misspelt security option
 * (`allowUnboundBearr`, `publicURL`) or one from another library (`resourceMetadataUrl`)
 * would otherwise be ignored silently, and the verifier would run with the default the
 * developer meant to change. Every factory checks its options bag (and the nested bags it
 * owns) against the names its options type declares, when it is built, and names the
 * closest known option (the matching is shared with the client: `@popkit/dpop-client/internal`).
 * @module
 */
import { unknownOption } from '@popkit/dpop-client/internal';
import { DPoPConfigError } from './errors.ts';

export type { OptionNames } from '@popkit/dpop-client/internal';
export { closest, editDistance } from '@popkit/dpop-client/internal';

/**
 * Throws a {@link DPoPConfigError} for the first own enumerable key of `options` that is not
 * in `known`, naming the closest known option when one is near. `path` prefixes nested bags
 * (`accessToken.`); `where` names the factory. @internal
 */
export function rejectUnknownOptions(
  options: object,
  known: Readonly<Record<string, true>>,
  where: string,
  path = '',
): void {
  const found = unknownOption(options, known);
  if (found === undefined) return;
  throw new DPoPConfigError(
    `${path}${found.name}`,
    `is not an option of ${where}${found.near === undefined ? '' : `: did you mean "${path}${found.near}"?`}`,
  );
}
