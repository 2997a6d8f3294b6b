// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/** The parts of src/ the import rule knows: folders, and top-level files by name. */
const PARTS = [
  'errors.ts',
  'logger.ts',
  'domain',
  'lib',
  'config',
  'git',
  'compose',
  'secrets',
  'registry',
  'workers',
  'machines',
  'actors',
  'store',
  'notify',
  'supervisor',
  'http',
  'daemon',
  'cli',
  'main.ts',
];

/**
 * Files in src/`part` may import only the `allowed` parts of src/ (and their own folder); every other part is
 * forbidden. Relative paths only (packages such as isomorphic-git/http/node must not match).
 */
function layer(part, allowed) {
  const forbidden = PARTS.filter((d) => d !== part && !allowed.includes(d));
  const group = forbidden.flatMap((d) =>
    ['../', '../../', '../../../'].map((up) => (d.endsWith('.ts') ? `${up}${d}` : `${up}${d}/*`)),
  );
  return {
    files: [`src/${part}/**`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group, message: 'layer violation: imports go one way, see the layer rules in eslint.config.js' },
          ],
        },
      ],
    },
  };
}

const BASE = ['errors.ts', 'logger.ts', 'domain', 'lib'];
const EFFECTS = ['git', 'compose', 'secrets'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-console': 'error',
    },
  },
  // Imports go one way. Layers, bottom to top (a layer may import the ones below it, never above):
  //
  //   domain/ (types only) · lib/ · errors.ts · logger.ts   ← every layer; domain/ imports lib/ at most (errors.ts
  //                                                           imports domain/ types, so not the other way round)
  //   config/                                               ← schema + loading (imports domain, errors)
  //   git/ · compose/ · secrets/                            ← leaf effects: plain options in, TaskResult out
  //   registry/ (Docker registry v2 client)                 ← leaf: lib/ and errors.ts only
  //   workers/ (task contracts + Piscina tasks)             ← wraps git/compose/secrets
  //   machines/ (pure XState deploy machine)                ← config types only
  //   actors/ (effects for the machine)  · store/ · notify/ ← side by side, none imports the others
  //   supervisor/                                           ← actors + store types; never http/
  //   http/ (Koa, over ports.ts + domain types)             ← never supervisor/store/actors/workers code
  //   daemon/ · cli/ · main.ts                              ← wiring; nothing imports them
  //
  // git/, compose/ and secrets/ do not import config/ either: they take plain option objects (the actors translate
  // RepoConfig into task inputs), which keeps them usable from a worker thread without the config schema.
  layer('domain', ['lib']),
  layer('lib', ['errors.ts', 'logger.ts', 'domain']),
  layer('config', BASE),
  ...EFFECTS.map((d) => layer(d, [...BASE, ...EFFECTS, 'registry'])),
  layer('registry', BASE),
  layer('workers', [...BASE, ...EFFECTS, 'registry']),
  layer('machines', [...BASE, 'config']),
  layer('actors', [...BASE, 'config', 'workers', 'machines', 'registry']),
  layer('store', BASE),
  layer('notify', [...BASE, 'config']),
  layer('supervisor', [...BASE, 'config', ...EFFECTS, 'registry', 'workers', 'machines', 'actors', 'store', 'notify']),
  layer('http', BASE),
  // The daemon composes every layer; only the CLI (and main) sit above it.
  layer(
    'daemon',
    PARTS.filter((d) => d !== 'cli' && d !== 'main.ts'),
  ),
  // The web UI runs in the browser: browser globals, and it reaches the daemon only through the REST API (type-only
  // imports of src/domain for the shapes).
  {
    files: ['web/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../src/*', '!../src/domain', '../src/*/**', '!../src/domain/types.ts'],
              message: 'the web UI uses the REST API only (type imports of src/domain are fine)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**', 'src/main.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
