#!/usr/bin/env node
// Guards `npm pack` / `npm publish`: only pnpm applies publishConfig (exports pointing at dist/)
// and replaces workspace: and catalog: ranges. Anything else would ship sources and ranges that
// cannot install.
const agent = process.env.npm_config_user_agent ?? '';
if (!agent.startsWith('pnpm/')) {
  console.error(
    `\npopkit packages are packed and published with pnpm only (found: ${agent.split(' ')[0] || 'unknown'}).\n` +
      'npm ignores publishConfig and would ship .ts exports with workspace:/catalog: ranges.\n' +
      'Use: pnpm release (or pnpm pack in a package folder).\n',
  );
  process.exit(1);
}
