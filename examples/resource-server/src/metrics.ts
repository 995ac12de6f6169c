import type { AuthOutcome } from '@popkit/dpop-verifier';

/** Counts `onResult` outcomes and renders them in the Prometheus text format. */
export class AuthMetrics {
  readonly #counts = new Map<string, number>();

  /** The `onResult` hook for createDPoPAuth. */
  readonly onResult = (outcome: AuthOutcome): void => {
    const labels =
      outcome.outcome === 'accepted'
        ? `outcome="accepted",scheme="${outcome.scheme}",reason="ok"`
        : `outcome="rejected",scheme="${outcome.scheme ?? 'none'}",reason="${outcome.reason}"`;
    this.#counts.set(labels, (this.#counts.get(labels) ?? 0) + 1);
  };

  /** `GET /metrics` body. */
  render(): string {
    let out =
      '# HELP popkit_auth_total Requests by authentication outcome.\n# TYPE popkit_auth_total counter\n';
    for (const [labels, n] of this.#counts) out += `popkit_auth_total{${labels}} ${n}\n`;
    return out;
  }

  /** One line: accepted and rejected counts per reason. */
  summary(): string {
    const totals = new Map<string, number>();
    for (const [labels, n] of this.#counts) {
      const key = labels.startsWith('outcome="accepted"')
        ? 'accepted'
        : /reason="([^"]+)"/.exec(labels)![1]!;
      totals.set(key, (totals.get(key) ?? 0) + n);
    }
    return [...totals].map(([k, n]) => `${k}=${n}`).join(' ');
  }

  /** Count of rejections with a given reason. */
  rejected(reason: string): number {
    let n = 0;
    for (const [labels, count] of this.#counts)
      if (labels.includes(`reason="${reason}"`) && labels.startsWith('outcome="rejected"'))
        n += count;
    return n;
  }
}
