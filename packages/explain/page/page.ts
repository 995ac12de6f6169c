/**
 * The offline page: the same `explain` as the CLI (the verifier's check modules on WebCrypto),
 * bundled by `scripts/build-page.mjs` into `page/index.html`. No network: nothing is fetched,
 * nothing is sent; it works from `file://`.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import type { ExplainInput, Explanation } from '../src/explain.ts';
import { explain } from '../src/explain.ts';
import { formatExplanation } from '../src/format.ts';
import { parseRequestText } from '../src/request-text.ts';

/** What `window.popkitExplain` takes: `explain()`'s input, the CLI's options (`jwks` as a JWK Set object). */
export type PageInput = ExplainInput;

declare global {
  interface Window {
    popkitExplain: (input: PageInput) => Promise<Explanation>;
  }
}

window.popkitExplain = (input) => explain(input);

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const value = (id: string): string => $<HTMLInputElement | HTMLTextAreaElement>(id).value.trim();

async function onExplain(): Promise<void> {
  const out = $('out');
  const table = $('steps');
  try {
    const pasted = value('raw');
    const parsed = pasted === '' ? undefined : parseRequestText(pasted);
    const method = value('method') || parsed?.method || '';
    const url = value('url') || parsed?.url || '';
    const input: PageInput = {
      method,
      url,
      dpop: value('dpop') ? [value('dpop')] : (parsed?.dpop ?? []),
      authorization: value('authorization')
        ? [value('authorization')]
        : (parsed?.authorization ?? []),
    };
    if (value('nonce')) input.nonce = value('nonce');
    if (value('now')) input.now = value('now');
    if (value('publicUrl')) input.publicUrl = value('publicUrl');
    if (value('jwks')) input.jwks = JSON.parse(value('jwks')) as JSONWebKeySet;
    if ($<HTMLInputElement>('allowUnboundBearer').checked) input.allowUnboundBearer = true;
    const e = await window.popkitExplain(input);
    $('verdict').textContent = e.ok
      ? 'Every check that can run offline passes.'
      : `Rejected: ${e.code} (reason ${e.reason}) at check ${e.step}.`;
    $('verdict').className = e.ok ? 'ok' : 'bad';
    table.replaceChildren(
      ...e.steps.map((s) => {
        const tr = document.createElement('tr');
        tr.className = s.status;
        for (const text of [
          String(s.step),
          s.status,
          s.name,
          s.reason ?? '',
          s.expected ?? '',
          s.found ?? '',
          s.fix ?? '',
        ]) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }),
    );
    out.textContent = formatExplanation(e, { method, url });
  } catch (error) {
    $('verdict').textContent = `Cannot explain: ${(error as Error).message}`;
    $('verdict').className = 'bad';
    table.replaceChildren();
    out.textContent = '';
  }
}

$('explain').addEventListener('click', () => void onExplain());
