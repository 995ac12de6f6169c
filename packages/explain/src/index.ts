/**
 * `@popkit/explain`: why was a DPoP request rejected? Every RFC 9449 §4.3 check, run with the
 * verifier's own code, with what was expected, what was found and the fix.
 * @packageDocumentation
 */
export { explain } from './explain.ts';
export type { ExplainInput, ExplainStep, Explanation } from './explain.ts';
export { parseCurl, parseHttpRequest, parseRequestText } from './request-text.ts';
export type { ParsedRequest } from './request-text.ts';
export { STEP_NAMES, STEP_ORDER } from './steps.ts';
export type { StepId } from './steps.ts';
export { formatExplanation } from './format.ts';
