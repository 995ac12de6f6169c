// Bundles an app entry the way a React Native app is built: Metro itself, with the
// `react-native` condition and platform resolution, React Native's Babel preset
// (babel.config.cjs) and a production, minified bundle, as `react-native bundle` makes it.
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(import.meta.url);

export interface MetroBundle {
  code: string;
  /** ms Metro took. */
  ms: number;
}

export async function metroBundle(entry: string, out: string, minify = true): Promise<MetroBundle> {
  const Metro = require('metro') as typeof import('metro');
  // metro's own dependencies, resolved from metro (pnpm does not hoist them)
  const fromMetro = createRequire(require.resolve('metro'));
  const { getDefaultConfig, mergeConfig } = fromMetro('metro-config') as {
    getDefaultConfig: (root: string) => Promise<Record<string, unknown>>;
    mergeConfig: (...c: unknown[]) => Record<string, unknown>;
  };
  const reactNative = realpathSync(join(here, 'node_modules', 'react-native'));
  const whatwgFetch = realpathSync(join(reactNative, '..', 'whatwg-fetch'));
  const defaults = await getDefaultConfig(here);
  const config = mergeConfig(defaults, {
    projectRoot: here,
    watchFolders: [
      here,
      join(root, 'packages', 'dpop-client'),
      join(root, 'node_modules', '.pnpm'),
    ],
    fileMapCacheDirectory: join(root, 'test-results', 'metro-cache'),
    cacheStores: [],
    resetCache: true,
    maxWorkers: 2,
    watcher: { watchman: { deferStates: [] } },
    resolver: {
      sourceExts: ['js', 'ts', 'json', 'cjs', 'mjs'],
      unstable_enablePackageExports: true,
      // @react-native/metro-config's conditions (Metro adds 'import'/'require' and 'default')
      unstable_conditionNames: ['react-native'],
      // as in an app, where the app's node_modules (@babel/runtime) serve every package
      nodeModulesPaths: [join(here, 'node_modules')],
      extraNodeModules: {
        'metro-runtime': dirname(fromMetro.resolve('metro-runtime/package.json')),
      },
      unstable_enableSymlinks: true,
      useWatchman: false,
      resolveRequest(
        context: {
          resolveRequest: (c: unknown, m: string, p: string | null) => unknown;
          originModulePath: string;
        },
        moduleName: string,
        platform: string | null,
      ) {
        // react-native-get-random-values talks to a TurboModule; URL.js to the Blob module.
        if (moduleName === 'react-native')
          return { type: 'sourceFile', filePath: join(here, 'app', 'stubs', 'react-native.js') };
        if (moduleName === './NativeBlobModule' && context.originModulePath.includes('Blob'))
          return {
            type: 'sourceFile',
            filePath: join(here, 'app', 'stubs', 'NativeBlobModule.js'),
          };
        if (moduleName === 'whatwg-fetch')
          return { type: 'sourceFile', filePath: join(whatwgFetch, 'dist', 'fetch.umd.js') };
        return context.resolveRequest(context, moduleName, platform);
      },
    },
    transformer: {
      babelTransformerPath: fromMetro.resolve('metro-babel-transformer'),
      enableBabelRCLookup: false,
      unstable_disableES6Transforms: false,
    },
    serializer: {
      getPolyfills: () => [],
    },
  });
  mkdirSync(join(root, 'test-results', 'metro-cache'), { recursive: true });
  const started = Date.now();
  await Metro.runBuild(
    config as never,
    {
      entry,
      out,
      platform: 'ios',
      dev: false,
      minify,
      sourceMap: false,
      // Hermes before V1 (the VM on npm, and every React Native before Hermes V1) needs classes
      // and private fields transformed: Metro's 'default' profile, not 'hermes-stable'.
      unstable_transformProfile: 'default',
    } as never,
  );
  return { code: readFileSync(out, 'utf8'), ms: Date.now() - started };
}
