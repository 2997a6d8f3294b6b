/**
 * @module Builds the web UI (web/) with esbuild into content-hashed files under dist/ui/ plus `manifest.json`, which
 * the UI route (src/http/routes/ui.ts) reads to write index.html and to know which asset names it may serve.
 *
 *   npx tsx scripts/build-ui.ts [outDir]     (npm run build:ui; `npm run build` runs it after tsc)
 *
 * Tests that run the daemon from sources call {@link buildUi} once before they open the page.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default output folder: the one the UI route looks in. */
export const UI_OUT_DIR = path.join(ROOT, 'dist', 'ui');

/** What manifest.json holds. */
export interface UiManifest {
  js: string;
  css: string;
  /** Every file of the bundle (asset names, no folders). */
  files: string[];
  /** gzip size of the JS in bytes (for the report and the build log). */
  jsGzipBytes: number;
}

/** Bundles web/main.tsx (and the CSS it imports) into `outDir`; files of an earlier build listed in its manifest go. */
export async function buildUi(outDir: string = UI_OUT_DIR): Promise<UiManifest> {
  await mkdir(outDir, { recursive: true });
  const manifestPath = path.join(outDir, 'manifest.json');
  const previous = await readFile(manifestPath, 'utf8')
    .then((s) => (JSON.parse(s) as Partial<UiManifest>).files ?? [])
    .catch(() => [] as string[]);
  const result = await build({
    entryPoints: { app: path.join(ROOT, 'web', 'main.tsx') },
    outdir: outDir,
    entryNames: '[name].[hash]',
    assetNames: '[name].[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    absWorkingDir: ROOT,
  });
  const files = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
  const js = files.find((f) => f.endsWith('.js'));
  const css = files.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`web UI build produced no ${js ? 'CSS' : 'JS'} file`);
  const jsGzipBytes = gzipSync(await readFile(path.join(outDir, js))).length;
  const manifest: UiManifest = { js, css, files, jsGzipBytes };
  for (const old of previous) {
    if (!files.includes(old) && path.basename(old) === old) await rm(path.join(outDir, old), { force: true });
  }
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : UI_OUT_DIR;
  const m = await buildUi(out);
  console.log(
    `web UI: ${path.relative(ROOT, out) || out}/${m.js} (${(m.jsGzipBytes / 1024).toFixed(1)} KB gzip), ${m.css}`,
  );
}
