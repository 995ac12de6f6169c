export {
  PROMETHEUS_INSTALL,
  RULE_FILES,
  startPrometheus,
} from '../examples/observability/src/prometheus.ts';
export type { PrometheusServer } from '../examples/observability/src/prometheus.ts';
import { PROMETHEUS_INSTALL } from '../examples/observability/src/prometheus.ts';
import { requireBinary } from './binaries.ts';

/**
 * Whether tests that need Debian's `prometheus` and `promtool` can run, with
 * {@link requireBinary}'s rule: under `CI` a missing one fails with the install command;
 * elsewhere the suite is skipped loudly.
 */
export function requirePrometheus(): boolean {
  return (
    requireBinary('prometheus', PROMETHEUS_INSTALL) && requireBinary('promtool', PROMETHEUS_INSTALL)
  );
}
