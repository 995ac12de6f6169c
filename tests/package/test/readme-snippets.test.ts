// Every TypeScript snippet in the docs compiles against the workspace sources.
//
// Which files: README.md, SECURITY.md, packages/*/README.md, examples/**/README.md,
// bench/README.md and docs/*.md. Which blocks: fences tagged ts, typescript, tsx, mts or cts.
// Each block becomes its own ES module (an `export {}` is appended, so top-level names never
// clash and top-level await works), written to a temporary directory outside the repository,
// and all of them are checked in ONE TypeScript program: the strict options of
// tsconfig.base.json, NodeNext, `types: ['node']` (snippets use process.env and DOM alike), no
// emit. `@popkit/*` and their subpaths resolve through each package's `exports` to its `src`
// (the "types" condition), third-party imports from the workspace's node_modules.
//
// Markers, in an HTML comment on the line(s) just before the fence (blank lines allowed):
//
//   <!-- snippet: no-check (why) -->
//     The block is not compiled. Only for genuine fragments (an options excerpt, a signature).
//     A parenthesized note after the flags is ignored: say why.
//   <!-- snippet: continues -->
//     The block continues the previous checked block of the same file: both are one module,
//     so its names and imports are in scope (a README that builds an example step by step).
//   <!-- snippet: assumes
//   declare const tokenEndpoint: string;
//   -->
//     TypeScript placed before the block, unseen by readers (GitHub and npm do not render
//     comments): the reader's own code the snippet talks to (a grant store, a native key
//     bridge). Prefer a visible import or setup line; use this for what is truly "yours".
//
// Flags combine on the first line (`<!-- snippet: continues assumes`). A failure names the
// markdown file, the line of the snippet's fence and the markdown line of each diagnostic.
import {
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');

/** Modules a snippet may import that no workspace package installs: typed as `any`. */
const NOT_INSTALLED = ['prom-client'];

interface Segment {
  /** First line of the segment in the generated module (0-based). */
  start: number;
  lines: number;
  /** Markdown line (1-based) of the segment's first line. */
  mdLine: number;
  /** Markdown line (1-based) of the fence of the block the segment belongs to. */
  fence: number;
  /** Indentation stripped from each line (a fence inside a list item). */
  indent: number;
}

interface Snippet {
  file: string;
  /** Markdown line (1-based) of the opening fence. */
  fenceLine: number;
  /** The generated module's extension: `.ts`, `.tsx`, `.mts` or `.cts`. */
  extension: string;
  segments: Segment[];
  code: string[];
}

function walkReadmes(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walkReadmes(path, out);
    else if (name === 'README.md') out.push(path);
  }
  return out;
}

function markdownFiles(): string[] {
  const files = [join(ROOT, 'README.md'), join(ROOT, 'SECURITY.md'), join(ROOT, 'bench/README.md')];
  for (const pkg of readdirSync(join(ROOT, 'packages')))
    files.push(join(ROOT, 'packages', pkg, 'README.md'));
  walkReadmes(join(ROOT, 'examples'), files);
  for (const doc of readdirSync(join(ROOT, 'docs')))
    if (doc.endsWith('.md')) files.push(join(ROOT, 'docs', doc));
  return [...new Set(files)].filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;
const EXTENSIONS: Record<string, string> = {
  ts: '.ts',
  typescript: '.ts',
  tsx: '.tsx',
  mts: '.mts',
  cts: '.cts',
};

function extract(file: string): { snippets: Snippet[]; skipped: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const snippets: Snippet[] = [];
  let skipped = 0;
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    let end = i + 1;
    const closing = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (end < lines.length && !closing.test(lines[end]!)) end++;
    const body = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    const fenceLine = i + 1;
    i = end;
    if (!Object.hasOwn(EXTENSIONS, lang.toLowerCase())) continue;

    // The marker: an HTML comment ending on the last non-blank line before the fence.
    let flags: string[] = [];
    let prelude: string[] = [];
    let preludeLine = fenceLine;
    let k = fenceLine - 2;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    if (k >= 0 && lines[k]!.trim().endsWith('-->')) {
      let s = k;
      while (s > 0 && !lines[s]!.includes('<!--')) s--;
      const comment = lines.slice(s, k + 1).join('\n');
      const m = /<!--\s*snippet:([^\n]*?)(?:-->|\n([\s\S]*?)-->)/.exec(comment);
      if (m) {
        flags = m[1]!
          .replace(/\(.*\)/, '')
          .trim()
          .split(/[\s,]+/)
          .filter(Boolean);
        for (const f of flags) {
          if (!['no-check', 'continues', 'assumes'].includes(f)) {
            throw new Error(`${relative(ROOT, file)}:${s + 1}: unknown snippet flag "${f}"`);
          }
        }
        if (flags.includes('assumes')) {
          prelude = (m[2] ?? '').replace(/\s+$/, '').split('\n');
          preludeLine = s + 2;
        }
      }
    }
    if (flags.includes('no-check')) {
      skipped++;
      continue;
    }
    const previous = snippets.at(-1);
    const target: Snippet =
      flags.includes('continues') && previous
        ? previous
        : { file, fenceLine, extension: EXTENSIONS[lang.toLowerCase()]!, segments: [], code: [] };
    if (flags.includes('continues') && !previous) {
      throw new Error(`${relative(ROOT, file)}:${fenceLine}: "continues" with no snippet before`);
    }
    if (prelude.length) {
      target.segments.push({
        start: target.code.length,
        lines: prelude.length,
        mdLine: preludeLine,
        fence: fenceLine,
        indent: 0,
      });
      target.code.push(...prelude);
    }
    target.segments.push({
      start: target.code.length,
      lines: body.length,
      mdLine: fenceLine + 1,
      fence: fenceLine,
      indent: indent.length,
    });
    target.code.push(...body);
    if (target !== previous) snippets.push(target);
  }
  return { snippets, skipped };
}

/** Workspace package directories: the places third-party imports are resolved from. */
function workspaceDirs(): string[] {
  const dirs = [ROOT];
  for (const group of ['packages', 'examples', 'tests']) {
    for (const name of readdirSync(join(ROOT, group))) {
      const dir = join(ROOT, group, name);
      try {
        if (statSync(join(dir, 'package.json')).isFile()) dirs.push(dir);
      } catch {
        // not a workspace package
      }
    }
  }
  dirs.push(join(ROOT, 'bench'));
  return dirs;
}

function compilerOptions(): ts.CompilerOptions {
  const base = ts.readConfigFile(join(ROOT, 'tsconfig.base.json'), ts.sys.readFile);
  if (base.error) throw new Error(ts.flattenDiagnosticMessageText(base.error.messageText, '\n'));
  const { options, errors } = ts.convertCompilerOptionsFromJson(base.config.compilerOptions, ROOT);
  if (errors.length) throw new Error(errors.map((e) => e.messageText).join('\n'));
  return {
    ...options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    // What a Node consumer (and tsconfig.examples.json) has: `import express from 'express'`.
    esModuleInterop: true,
    allowSyntheticDefaultImports: true,
    jsx: ts.JsxEmit.Preserve,
    types: ['node'],
    typeRoots: [join(ROOT, 'node_modules/@types')],
  };
}

// (real path: TypeScript reports file names resolved, e.g. macOS's /var is /private/var)
const work = realpathSync(mkdtempSync(join(tmpdir(), 'popkit-readme-snippets-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('README snippets', () => {
  const files = markdownFiles();
  const all: Snippet[] = [];
  let skipped = 0;
  for (const file of files) {
    const found = extract(file);
    all.push(...found.snippets);
    skipped += found.skipped;
  }

  it('finds the snippets', () => {
    expect(files.map((f) => relative(ROOT, f))).toContain('packages/dpop-verifier/README.md');
    expect(all.length).toBeGreaterThanOrEqual(15);
  });

  it(`every TypeScript snippet type-checks (${all.length} modules, ${skipped} marked no-check)`, () => {
    writeFileSync(join(work, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(work, 'not-installed.d.ts'),
      NOT_INSTALLED.map((m) => `declare module '${m}';`).join('\n') + '\n',
    );
    const byPath = new Map<string, Snippet>();
    all.forEach((snippet, n) => {
      const name = `${relative(ROOT, snippet.file).replace(/[/.]/g, '_')}_L${snippet.fenceLine}_${n}${snippet.extension}`;
      const path = join(work, name);
      writeFileSync(path, [...snippet.code, 'export {};', ''].join('\n'));
      byPath.set(path, snippet);
    });

    const options = compilerOptions();
    const host = ts.createCompilerHost(options, true);
    const bases = workspaceDirs();
    host.resolveModuleNameLiterals = (literals, containingFile, redirected, opts, sourceFile) =>
      literals.map((literal) => {
        const name = literal.text;
        const mode = ts.getModeForUsageLocation(sourceFile, literal, opts);
        const resolve = (from: string) =>
          ts.resolveModuleName(name, from, opts, host, undefined, redirected, mode);
        const direct = resolve(containingFile);
        if (direct.resolvedModule || !containingFile.startsWith(work) || name.startsWith('.')) {
          return direct;
        }
        // A bare specifier in a snippet: resolve it as a file of the workspace would, the
        // package's own directory first (a self-reference through its `exports`).
        const own = /^@popkit\/([^/]+)/.exec(name)?.[1];
        const order = own ? [join(ROOT, 'packages', own), ...bases] : bases;
        for (const dir of order) {
          const found = resolve(join(dir, '__readme_snippet__.ts'));
          if (found.resolvedModule) return found;
        }
        return direct;
      });

    const started = performance.now();
    const program = ts.createProgram({
      rootNames: [join(work, 'not-installed.d.ts'), ...byPath.keys()],
      options,
      host,
    });
    // Only the snippets' own diagnostics: the package sources they reach are `pnpm typecheck`'s
    // (and checking only these files keeps the run to a few seconds).
    const diagnostics: ts.Diagnostic[] = [
      ...program.getOptionsDiagnostics(),
      ...program.getGlobalDiagnostics(),
    ];
    for (const path of byPath.keys()) {
      const sourceFile = program.getSourceFile(path);
      if (!sourceFile) throw new Error(`${path}: not in the program`);
      diagnostics.push(
        ...program.getSyntacticDiagnostics(sourceFile),
        ...program.getSemanticDiagnostics(sourceFile),
      );
    }
    const problems = diagnostics.map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n    ');
      const snippet = d.file && byPath.get(d.file.fileName);
      if (!d.file || d.start === undefined) return `TS${d.code}: ${message}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      if (!snippet) {
        const where = relative(ROOT, d.file.fileName);
        return `${where}:${line + 1}:${character + 1} (reached from a snippet) TS${d.code}: ${message}`;
      }
      const segment =
        [...snippet.segments].reverse().find((s) => s.start <= line) ?? snippet.segments[0]!;
      const mdLine = segment.mdLine + Math.min(line - segment.start, segment.lines);
      const md = relative(ROOT, snippet.file);
      return `${md}:${mdLine}:${character + 1 + segment.indent} (snippet at line ${segment.fence}) TS${d.code}: ${message}`;
    });
    console.info(
      `readme-snippets: ${all.length} modules from ${files.length} files checked in ${Math.round(performance.now() - started)} ms`,
    );
    problems.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    expect(problems.length, `TypeScript errors in README snippets:\n${problems.join('\n')}\n`).toBe(
      0,
    );
  });
});
