/**
 * A request pasted as text: a raw HTTP/1.1 request (`GET /orders HTTP/1.1`, headers) or a
 * `curl` command line, read into the inputs of `explain`. Header names are case-insensitive;
 * repeated `DPoP` or `Authorization` headers are kept, so check 1 sees them.
 * @module
 */

/** The parts of a pasted request that `explain` needs. */
export interface ParsedRequest {
  method: string;
  /** Absolute when the text names a host (`Host` header or a curl URL). */
  url: string;
  dpop: string[];
  authorization: string[];
}

/** A raw HTTP request or a curl command line (whichever the text looks like). */
export function parseRequestText(text: string, scheme = 'https'): ParsedRequest {
  return /^\s*curl\s/.test(text) ? parseCurl(text) : parseHttpRequest(text, scheme);
}

function collect(out: ParsedRequest, name: string, value: string): void {
  const n = name.trim().toLowerCase();
  if (n === 'dpop') out.dpop.push(value.trim());
  else if (n === 'authorization') out.authorization.push(value.trim());
}

/** A raw HTTP/1.1 request: request line, headers (the body, if any, is ignored). */
export function parseHttpRequest(text: string, scheme = 'https'): ParsedRequest {
  const lines = text.replace(/^\s+/, '').split(/\r?\n/);
  const match = /^([A-Za-z]+)\s+(\S+)(?:\s+HTTP\/[\d.]+)?\s*$/.exec(lines[0] ?? '');
  if (!match) throw new TypeError('not an HTTP request: expected a line like "GET /path HTTP/1.1"');
  const out: ParsedRequest = {
    method: match[1]!.toUpperCase(),
    url: match[2]!,
    dpop: [],
    authorization: [],
  };
  let host: string | undefined;
  for (const line of lines.slice(1)) {
    if (line.trim() === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (name.trim().toLowerCase() === 'host') host = value.trim();
    collect(out, name, value);
  }
  if (out.url.startsWith('/') && host !== undefined) out.url = `${scheme}://${host}${out.url}`;
  return out;
}

/** The words of a POSIX shell command line: quotes, backslashes, line continuations. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && text[i + 1] === '\n') {
      i++;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new TypeError('unterminated single quote in the curl command');
      word += text.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`\n'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw new TypeError('unterminated double quote in the curl command');
      i = j;
    } else if (ch === '\\' && i + 1 < text.length) {
      word += text[++i];
    } else word += ch;
  }
  if (inWord) words.push(word);
  return words;
}

/** A `curl` command line (`-X`/`--request`, `-H`/`--header`, the URL; `-d` implies POST). */
export function parseCurl(text: string): ParsedRequest {
  const words = shellWords(text);
  if (words[0] !== 'curl') throw new TypeError('not a curl command');
  const out: ParsedRequest = { method: '', url: '', dpop: [], authorization: [] };
  let data = false;
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const next = (): string => {
      const v = words[++i];
      if (v === undefined) throw new TypeError(`${w} needs a value`);
      return v;
    };
    if (w === '-X' || w === '--request') out.method = next().toUpperCase();
    else if (w.startsWith('-X') && w.length > 2) out.method = w.slice(2).toUpperCase();
    else if (w === '-H' || w === '--header') {
      const h = next();
      const colon = h.indexOf(':');
      if (colon > 0) collect(out, h.slice(0, colon), h.slice(colon + 1));
    } else if (/^(-d|--data|--data-raw|--data-binary|--data-urlencode|-F|--form|--json)$/.test(w)) {
      next();
      data = true;
    } else if (w === '--url') out.url = next();
    else if (
      /^-(u|A|e|b|c|o|x|-user|-user-agent|-referer|-cookie|-output|-proxy|-cert|-key|-cacert|-connect-timeout|-max-time)$/.test(
        w,
      )
    )
      next();
    else if (w === '-I' || w === '--head') out.method ||= 'HEAD';
    else if (!w.startsWith('-') && out.url === '') out.url = w;
  }
  if (out.url === '') throw new TypeError('the curl command has no URL');
  out.method ||= data ? 'POST' : 'GET';
  return out;
}
