// The API's metrics: popkit's OpenTelemetry instruments (@popkit/dpop-verifier/otel) read by
// the OpenTelemetry Prometheus exporter, served at GET /metrics in the Prometheus text format.
import type { AuthOutcome, UpstreamEvent } from '@popkit/dpop-verifier';
import { dpopTelemetry } from '@popkit/dpop-verifier/otel';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** popkit's telemetry for one API, with a Prometheus endpoint and a one-line summary. */
export class AuthMetrics {
  readonly #exporter = new PrometheusExporter({ preventServerStart: true });
  readonly #provider = new MeterProvider({ readers: [this.#exporter] });
  readonly #serializer = new PrometheusSerializer();
  readonly #telemetry = dpopTelemetry({ meterProvider: this.#provider });
  /** Outcomes by reason (`accepted` for accepted ones), for the demo's summary line. */
  readonly #counts = new Map<string, number>();

  /** The `onResult` hook for createDPoPAuth / createTokenRequestVerifier. */
  readonly onResult = (outcome: AuthOutcome): void => {
    const key = outcome.outcome === 'accepted' ? 'accepted' : outcome.reason;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#telemetry.onResult(outcome);
  };

  /** The `onUpstream` hook (JWKS fetches). */
  readonly onUpstream = (event: UpstreamEvent): void => this.#telemetry.onUpstream(event);

  /** `GET /metrics` body (Prometheus text format 0.0.4). */
  async render(): Promise<string> {
    const { resourceMetrics } = await this.#exporter.collect();
    return this.#serializer.serialize(resourceMetrics);
  }

  /** One line: accepted and rejected counts per reason. */
  summary(): string {
    return [...this.#counts].map(([k, n]) => `${k}=${n}`).join(' ');
  }

  /** Count of rejections with a given reason. */
  rejected(reason: string): number {
    return reason === 'accepted' ? 0 : (this.#counts.get(reason) ?? 0);
  }

  async close(): Promise<void> {
    await this.#provider.shutdown();
  }
}
