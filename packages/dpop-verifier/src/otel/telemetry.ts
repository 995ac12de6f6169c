/**
 * `dpopTelemetry()`: popkit's outcomes as OpenTelemetry metrics and spans, with attribute values
 * from closed sets only (see `names.ts`).
 * @module
 */
import type {
  Attributes,
  Counter,
  Histogram,
  Meter,
  MeterProvider,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import { SpanKind, SpanStatusCode, metrics, trace } from '@opentelemetry/api';
import type { AuthOutcome } from '../auth.ts';
import { DPoPConfigError } from '../errors.ts';
import type { OptionNames } from '../options.ts';
import { rejectUnknownOptions } from '../options.ts';
import type { UpstreamEvent } from '../upstream.ts';
import {
  ALGS,
  ATTR,
  DURATION_BUCKETS,
  ENDPOINTS,
  METRIC,
  OTHER,
  OUTCOMES,
  PROOF_SIZE_BUCKETS,
  REASONS,
  SCHEMES,
  SKEW_BUCKETS,
  STORE_BUCKETS,
  TOKEN_SIZE_BUCKETS,
  UPSTREAM_BUCKETS,
} from './names.ts';

/** Options of {@link dpopTelemetry}. */
export interface DPoPTelemetryOptions {
  /** Where metrics go. Default: the global provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where the `dpop.verify` spans go. Default: the global provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Record one `dpop.verify` span per verification. Default true. */
  spans?: boolean;
  /**
   * Start a `dpop.verify` span only under an active span (the HTTP server span of an
   * instrumented server), as OpenTelemetry's own instrumentations do by default: without one,
   * each verification would be a trace of its own. Default true.
   */
  requireParentSpan?: boolean;
}

/** The names of {@link DPoPTelemetryOptions}, for the unknown-option check. @internal */
export const TELEMETRY_OPTION_NAMES = {
  meterProvider: true,
  tracerProvider: true,
  spans: true,
  requireParentSpan: true,
} as const satisfies OptionNames<DPoPTelemetryOptions>;

/**
 * The hooks `createDPoPAuth` and `createTokenRequestVerifier` take: spread the object into
 * either (`{ ...telemetry, … }`), or pass its members.
 */
export interface DPoPTelemetry {
  /** Records one verification: metrics, and a `dpop.verify` span. */
  onResult: (outcome: AuthOutcome) => void;
  /** Records one call to the authorization server (JWKS, introspection). */
  onUpstream: (event: UpstreamEvent) => void;
}

const SCOPE = '@popkit/dpop-verifier';

/**
 * OpenTelemetry for the verifier (`@opentelemetry/api` only, an optional peer dependency):
 *
 * - `dpop.verification.duration` (histogram, s) by `dpop.outcome` (accepted | rejected |
 *   error), `dpop.reason` (the refusal `reason`, else `_OTHER`; none when accepted),
 *   `dpop.scheme` (DPoP | Bearer | none), `dpop.alg` (a proof algorithm; none when unknown)
 *   and `dpop.endpoint` (resource | token);
 * - `dpop.replays`, `dpop.signature.failures` (`dpop.signature.of`: proof | access_token),
 *   `dpop.nonce.challenges` (counters); `dpop.proof.clock_skew` (s, `iat`'s distance from the
 *   server clock, by `dpop.clock.direction`: behind | ahead),
 *   `dpop.proof.size` and `dpop.access_token.size` (bytes), `dpop.replay_store.duration` (s)
 *   (histograms, the last three without attributes); `dpop.replay_store.fill` (gauge, 0 to 1,
 *   by `dpop.endpoint`);
 * - `dpop.introspection.duration` (s, by `dpop.introspection.result`) and
 *   `dpop.jwks.duration` (s, by `dpop.jwks.result` and `dpop.jwks.trigger`): their counts
 *   are the calls;
 * - one `dpop.verify` span per verification (same attributes; status ERROR when refused),
 *   a child of the span active when the verdict is reached (the HTTP server span, with HTTP
 *   instrumentation); without an active span none is started unless `requireParentSpan` is
 *   false.
 *
 * Every attribute value comes from a closed set: no token, proof, `jti`, key, URL, path or
 * header value is ever recorded, so hostile traffic cannot add time series. Without it the
 * verifier pays nothing (`onResult` unset).
 *
 * @example
 * ```ts
 * const telemetry = dpopTelemetry();
 * const auth = createDPoPAuth({ ...telemetry, accessToken, publicUrl, replay });
 * const checkDPoP = createTokenRequestVerifier({ ...telemetry, tokenEndpoint, replay });
 * ```
 */
export function dpopTelemetry(options: DPoPTelemetryOptions = {}): DPoPTelemetry {
  if (options === null || typeof options !== 'object')
    throw new DPoPConfigError('options', 'must be an object');
  rejectUnknownOptions(options, TELEMETRY_OPTION_NAMES, 'dpopTelemetry');
  const { meterProvider, tracerProvider, spans = true, requireParentSpan = true } = options;
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function')
    throw new DPoPConfigError('meterProvider', 'must be an OpenTelemetry MeterProvider');
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function')
    throw new DPoPConfigError('tracerProvider', 'must be an OpenTelemetry TracerProvider');
  if (typeof spans !== 'boolean') throw new DPoPConfigError('spans', 'must be a boolean');
  if (typeof requireParentSpan !== 'boolean')
    throw new DPoPConfigError('requireParentSpan', 'must be a boolean');
  const meter = (meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const tracer = spans ? (tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE) : undefined;
  const recorder = new Recorder(meter, tracer, requireParentSpan);
  return {
    onResult: (outcome) => recorder.result(outcome),
    onUpstream: (event) => recorder.upstream(event),
  };
}

const BEHIND: Attributes = Object.freeze({ [ATTR.clockDirection]: 'behind' });
const AHEAD: Attributes = Object.freeze({ [ATTR.clockDirection]: 'ahead' });
const REASON_INDEX = indexOf([...REASONS]);
const ALG_INDEX = indexOf([...ALGS]);
/** Indices past the named values: none given, and {@link OTHER}. */
const NONE = 0;

function indexOf(values: readonly string[]): ReadonlyMap<string, number> {
  return new Map(values.map((v, i) => [v, i + 2]));
}

/** The instruments, and the attribute sets built once each (a closed set of them). */
class Recorder {
  readonly #tracer: Tracer | undefined;
  readonly #duration: Histogram;
  readonly #replays: Counter;
  readonly #signatures: Counter;
  readonly #nonces: Counter;
  readonly #skew: Histogram;
  readonly #proofSize: Histogram;
  readonly #tokenSize: Histogram;
  readonly #store: Histogram;
  readonly #introspection: Histogram;
  readonly #jwks: Histogram;
  /** The last fill level seen, per endpoint (the gauge reports it when collected). */
  readonly #fill: [number | undefined, number | undefined] = [undefined, undefined];
  /** Verification attribute sets, by index (see {@link Recorder.#attributes}). */
  readonly #sets: Attributes[] = [];
  readonly #byEndpoint: readonly Attributes[] = ENDPOINTS.map((e) => ({ [ATTR.endpoint]: e }));
  readonly #other = new Map<string, Attributes>();

  readonly #requireParent: boolean;

  constructor(meter: Meter, tracer: Tracer | undefined, requireParent: boolean) {
    this.#tracer = tracer;
    this.#requireParent = requireParent;
    const histogram = (name: string, unit: string, description: string, buckets: number[]) =>
      meter.createHistogram(name, {
        unit,
        description,
        advice: { explicitBucketBoundaries: buckets },
      });
    this.#duration = histogram(
      METRIC.duration,
      's',
      'Time to verify a request or token request, by outcome and reason',
      DURATION_BUCKETS,
    );
    this.#replays = meter.createCounter(METRIC.replays, {
      unit: '{proof}',
      description: 'Proofs refused because they were used before (RFC 9449 §11.1)',
    });
    this.#signatures = meter.createCounter(METRIC.signatureFailures, {
      unit: '{request}',
      description: 'Requests refused for a bad signature, of the proof or of the access token',
    });
    this.#nonces = meter.createCounter(METRIC.nonceChallenges, {
      unit: '{challenge}',
      description: 'use_dpop_nonce answers (RFC 9449 §8, §9)',
    });
    this.#skew = histogram(
      METRIC.clockSkew,
      's',
      'Distance of the proof iat from the server clock, by direction (behind: iat is earlier)',
      SKEW_BUCKETS,
    );
    this.#proofSize = histogram(
      METRIC.proofSize,
      'By',
      'Size of the DPoP header received',
      PROOF_SIZE_BUCKETS,
    );
    this.#tokenSize = histogram(
      METRIC.tokenSize,
      'By',
      'Size of the access token received',
      TOKEN_SIZE_BUCKETS,
    );
    this.#store = histogram(
      METRIC.storeDuration,
      's',
      'Time the replay store took to record a proof',
      STORE_BUCKETS,
    );
    this.#introspection = histogram(
      METRIC.introspectionDuration,
      's',
      'RFC 7662 introspection calls, by result',
      UPSTREAM_BUCKETS,
    );
    this.#jwks = histogram(
      METRIC.jwksDuration,
      's',
      'JWKS fetches, by result and trigger',
      UPSTREAM_BUCKETS,
    );
    meter
      .createObservableGauge(METRIC.storeFill, {
        unit: '1',
        description: 'Replay store fill level (0 to 1), as last reported',
      })
      .addCallback((result) => {
        for (let e = 0; e < 2; e++) {
          const fill = this.#fill[e];
          if (fill !== undefined) result.observe(fill, this.#byEndpoint[e]!);
        }
      });
  }

  result(o: AuthOutcome): void {
    const endpoint = o.endpoint === 'token' ? 1 : 0;
    const outcome = o.outcome === 'accepted' ? 0 : o.status >= 500 ? 2 : 1;
    const scheme = o.scheme === 'DPoP' ? 0 : o.scheme === 'Bearer' ? 1 : 2;
    const alg = o.alg === undefined ? NONE : (ALG_INDEX.get(o.alg) ?? 1);
    const reason = o.outcome === 'accepted' ? NONE : (REASON_INDEX.get(o.reason) ?? 1);
    const attributes = this.#attributes(outcome, reason, scheme, alg, endpoint);
    const at = this.#byEndpoint[endpoint]!;
    this.#duration.record(o.durationMs / 1000, attributes);
    // (the SDK hashes attributes on every record: the distributions carry none, or one)
    const skew = o.iatSkew;
    if (skew !== undefined && Number.isFinite(skew))
      this.#skew.record(Math.abs(skew), skew < 0 ? BEHIND : AHEAD);
    if (o.proofLength !== undefined) this.#proofSize.record(o.proofLength);
    if (o.tokenLength !== undefined) this.#tokenSize.record(o.tokenLength);
    if (o.storeMs !== undefined) this.#store.record(o.storeMs / 1000);
    if (o.replayFill !== undefined) this.#fill[endpoint] = o.replayFill;
    if (o.outcome === 'rejected') {
      if (o.reason === 'replay') this.#replays.add(1, at);
      else if (o.reason === 'signature')
        this.#signatures.add(1, this.#signature('proof', endpoint));
      else if (o.reason === 'token_signature')
        this.#signatures.add(1, this.#signature('access_token', endpoint));
      if (o.code === 'use_dpop_nonce') this.#nonces.add(1, attributes);
    }
    const tracer = this.#tracer;
    if (tracer !== undefined && (!this.#requireParent || trace.getActiveSpan() !== undefined)) {
      const span = tracer.startSpan('dpop.verify', {
        kind: SpanKind.INTERNAL,
        startTime: performance.timeOrigin + performance.now() - o.durationMs,
        attributes,
      });
      if (outcome !== 0)
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: attributes[ATTR.reason] as string,
        });
      span.end();
    }
  }

  upstream(event: UpstreamEvent): void {
    if (event === null || typeof event !== 'object') return;
    const seconds = event.durationMs / 1000;
    if (!Number.isFinite(seconds)) return;
    if (event.kind === 'introspection') {
      this.#introspection.record(
        seconds,
        this.#closed(ATTR.introspectionResult, event.result, ['active', 'inactive', 'error']),
      );
    } else if (event.kind === 'jwks') {
      const result = closedValue(event.result, ['ok', 'error']);
      const trigger = closedValue(event.trigger, ['initial', 'expired', 'refresh', 'unknown_key']);
      this.#jwks.record(
        seconds,
        this.#cached(`jwks|${result}|${trigger}`, () => ({
          [ATTR.jwksResult]: result,
          [ATTR.jwksTrigger]: trigger,
        })),
      );
    }
  }

  /** The attribute set of a verification (built on first use, then shared). */
  #attributes(outcome: number, reason: number, scheme: number, alg: number, endpoint: number) {
    const index =
      (((outcome * 3 + scheme) * 2 + endpoint) * (ALGS.size + 2) + alg) * (REASONS.size + 2) +
      reason;
    let set = this.#sets[index];
    if (set === undefined) {
      set = {
        [ATTR.outcome]: OUTCOMES[outcome]!,
        [ATTR.scheme]: SCHEMES[scheme]!,
        [ATTR.endpoint]: ENDPOINTS[endpoint]!,
      };
      if (alg !== NONE) set[ATTR.alg] = alg === 1 ? OTHER : [...ALGS][alg - 2]!;
      if (reason !== NONE) set[ATTR.reason] = reason === 1 ? OTHER : [...REASONS][reason - 2]!;
      this.#sets[index] = Object.freeze(set);
    }
    return set;
  }

  #signature(of: 'proof' | 'access_token', endpoint: number): Attributes {
    return this.#cached(`sig|${of}|${endpoint}`, () => ({
      [ATTR.signatureOf]: of,
      [ATTR.endpoint]: ENDPOINTS[endpoint]!,
    }));
  }

  #closed(key: string, value: unknown, allowed: readonly string[]): Attributes {
    const v = closedValue(value, allowed);
    return this.#cached(`${key}|${v}`, () => ({ [key]: v }));
  }

  #cached(key: string, build: () => Attributes): Attributes {
    let set = this.#other.get(key);
    if (set === undefined) this.#other.set(key, (set = Object.freeze(build())));
    return set;
  }
}

function closedValue(value: unknown, allowed: readonly string[]): string {
  return typeof value === 'string' && allowed.includes(value) ? value : OTHER;
}
