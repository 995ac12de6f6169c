/**
 * `@popkit/dpop-verifier/otel`: OpenTelemetry metrics and spans for the verifier, with bounded
 * attributes (needs `@opentelemetry/api`).
 * @packageDocumentation
 */
export { dpopTelemetry } from './telemetry.ts';
export type { DPoPTelemetry, DPoPTelemetryOptions } from './telemetry.ts';
export { ATTR as DPOP_ATTRIBUTES, METRIC as DPOP_METRICS, OTHER } from './names.ts';
