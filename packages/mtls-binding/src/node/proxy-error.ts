import { MtlsBindingError } from '../errors.ts';

/**
 * Unusable certificate information from the client's side of a proxy: 401 `invalid_token`,
 * reason `certificate_unusable`. The message names the defect, never the header's content.
 * @internal
 */
export function proxyError(message: string, cause?: unknown): MtlsBindingError {
  return new MtlsBindingError(
    'certificate_unusable',
    message,
    cause === undefined ? undefined : { cause },
  );
}
