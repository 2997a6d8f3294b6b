/**
 * @module YAML text → plain data, the one step of loading a project file that cannot yield: the `yaml` library parses
 * a document in one synchronous call (about 100 ms for a 1,000-repository file on a small idle host, 50 KB). Texts above
 * {@link OFF_THREAD_BYTES} are parsed in a short-lived worker thread so the event loop keeps serving the API and
 * timers during a boot; smaller ones are parsed in place (a worker costs more than it saves there). Both paths run
 * the same function and give the same result.
 */
import { Worker } from 'node:worker_threads';
import YAML from 'yaml';

/** Texts at least this long (UTF-16 units) are parsed off the main thread. */
export const OFF_THREAD_BYTES = 16 * 1024;

/** The outcome of parsing one YAML text: syntax errors (human sentences), a conversion error, or the value. */
export type YamlTextResult =
  { kind: 'syntax'; messages: string[] } | { kind: 'convert'; message: string } | { kind: 'value'; value: unknown };

/**
 * Parses and converts one YAML text (merge keys on, duplicate keys refused, alias expansion bounded against
 * "billion laughs"). Pure; used in place and inside the worker.
 */
export function parseYamlText(text: string): YamlTextResult {
  const doc = YAML.parseDocument(text, { prettyErrors: true, merge: true, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      kind: 'syntax',
      messages: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const what = e.message.split(/ at line \d+, column \d+/)[0]?.split('\n')[0] ?? e.message;
        return pos ? `YAML syntax error at line ${pos.line}, column ${pos.col}: ${what}` : `YAML syntax error: ${what}`;
      }),
    };
  }
  try {
    return { kind: 'value', value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (err) {
    return {
      kind: 'convert',
      message: `YAML error: ${err instanceof Error ? (err.message.split('\n')[0] ?? '') : 'cannot convert document'}`,
    };
  }
}

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * The worker running yaml-worker with `text`. From the sources (tsx), a worker's entry cannot be a .ts file (the
 * loader hooks of `--import tsx` are not in place for it), so a one-line entry imports it through tsx's API.
 */
function startWorker(text: string): Worker {
  const file = new URL(`./yaml-worker${ext}`, import.meta.url);
  if (ext === '.js') return new Worker(file, { workerData: text });
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(file.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(code, { eval: true, workerData: text });
}

/**
 * {@link parseYamlText}, off the main thread for large texts. A worker that cannot start or dies falls back to
 * parsing in place: loading a config never fails because of the thread.
 */
export async function parseYamlTextAsync(text: string, offThreadBytes = OFF_THREAD_BYTES): Promise<YamlTextResult> {
  if (text.length < offThreadBytes) return parseYamlText(text);
  try {
    return await new Promise<YamlTextResult>((resolve, reject) => {
      const worker = startWorker(text);
      worker.once('message', (r: YamlTextResult) => {
        resolve(r);
        void worker.terminate();
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`YAML worker exited with code ${code}`)));
    });
  } catch {
    return parseYamlText(text);
  }
}
