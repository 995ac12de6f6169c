/**
 * An explanation as text, for a terminal or a support ticket: never the token or the proof
 * (a hash prefix stands for each), the proof's decoded header (private key members redacted)
 * and claims, the token's claims, and every check with its fix.
 * @module
 */
import type { Explanation } from './explain.ts';

const MARK = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP', not_checked: ' -- ' } as const;

/** The explanation as plain text lines (no colours, no trailing newline). */
export function formatExplanation(
  e: Explanation,
  request: { method: string; url: string },
): string {
  const out: string[] = [];
  out.push(`popkit explain: ${request.method} ${request.url} at ${e.now}`);
  if (e.proof !== null) {
    out.push(`proof  ${e.proof.sha256}…`);
    out.push(`  header ${JSON.stringify(e.proof.header)}`);
    out.push(`  claims ${JSON.stringify(e.proof.claims)}`);
  }
  if (e.token !== null) {
    out.push(`token  ${e.token.sha256}… (${e.token.scheme}; signature ${e.token.signature})`);
    if (e.token.claims !== null) out.push(`  claims ${JSON.stringify(e.token.claims)}`);
  }
  out.push('');
  for (const s of e.steps) {
    const id = String(s.step).padEnd(13);
    out.push(`${MARK[s.status]} ${id} ${s.name}${s.reason === null ? '' : `  [${s.reason}]`}`);
    if (s.status === 'failed') {
      if (s.expected !== null) out.push(`     expected: ${s.expected}`);
      if (s.found !== null) out.push(`     found:    ${s.found}`);
    }
    if (s.fix !== null) out.push(`     ${s.status === 'failed' ? 'fix:      ' : ''}${s.fix}`);
  }
  out.push('');
  out.push(
    e.ok
      ? 'Every check that can run offline passes (the replay check is the server’s).'
      : `Rejected: ${e.code} (reason ${e.reason}) at check ${e.step}: the server refuses this request for that reason first.`,
  );
  return out.join('\n');
}
