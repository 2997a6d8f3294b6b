/**
 * @module Makes isomorphic-git inflate git objects with Node's native zlib instead of pako (pure JavaScript, ~4×
 * slower; a fifth of a clone's CPU). isomorphic-git reads `pako.inflate` (one object) and `pako.Inflate` (the pack
 * indexer, which pushes the rest of the pack and asks how much input the object used) from pako's module object at
 * call time, so replacing those two functions on the very pako instance it loads is enough: no patch of
 * node_modules. Results and errors keep pako's shape (a Uint8Array; a thrown message string on corrupt data, which
 * isomorphic-git turns into its DecompressionError). Deflate (writing objects) stays pako's.
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

interface PakoInflator {
  result: Uint8Array | false | undefined;
  err: number;
  msg: string;
  strm: { avail_in: number };
  push(data: Uint8Array, mode?: boolean | number): boolean;
}
interface Pako {
  inflate(data: Uint8Array): Uint8Array;
  Inflate: new () => PakoInflator;
  __shiparrNative?: boolean;
}

/** zlib's "unexpected end of file": the stream continues in data not pushed yet. */
const isTruncated = (err: unknown): boolean => (err as { code?: unknown }).code === 'Z_BUF_ERROR';
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Installs the native inflate into the pako module isomorphic-git resolves (idempotent). Returns false when that
 * module is not pako's expected shape (then isomorphic-git keeps using pako as it is).
 */
export function useNativeInflate(): boolean {
  let pako: Pako;
  try {
    // The same module instance isomorphic-git gets from its own `require('pako')`.
    const fromGit = createRequire(createRequire(import.meta.url).resolve('isomorphic-git'));
    pako = fromGit('pako') as Pako;
  } catch {
    return false;
  }
  if (pako.__shiparrNative) return true;
  if (typeof pako.inflate !== 'function' || typeof pako.Inflate !== 'function') return false;
  const PakoInflate = pako.Inflate;

  const inflate = (data: Uint8Array): Uint8Array => {
    try {
      return zlib.inflateSync(data);
    } catch (err) {
      // pako's contract: corrupt data is a thrown string (isomorphic-git maps it to DecompressionError).
      throw message(err);
    }
  };

  /**
   * pako.Inflate for one deflate stream followed by unrelated bytes. The first push is inflated natively in one
   * call (the indexer pushes the rest of the pack, so the stream ends inside it); a stream that continues past it
   * falls back to pako for this object, so large objects fed in pieces stay linear.
   */
  class NativeInflate implements PakoInflator {
    result: Uint8Array | false | undefined = undefined;
    err = 0;
    msg = '';
    strm = { avail_in: 0 };
    private fallback: PakoInflator | undefined;

    push(data: Uint8Array, mode?: boolean | number): boolean {
      if (this.fallback) return this.delegate(data, mode);
      try {
        const { buffer, engine } = zlib.inflateSync(data, { info: true }) as unknown as {
          buffer: Buffer;
          engine: { bytesWritten: number };
        };
        this.result = buffer;
        this.strm.avail_in = data.length - engine.bytesWritten;
        return true;
      } catch (err) {
        if (!isTruncated(err)) {
          this.err = -3; // Z_DATA_ERROR, as pako reports it
          this.msg = message(err);
          return false;
        }
      }
      this.fallback = new PakoInflate();
      return this.delegate(data, mode);
    }

    private delegate(data: Uint8Array, mode?: boolean | number): boolean {
      const f = this.fallback!;
      const ok = f.push(data, mode);
      this.result = f.result;
      this.err = f.err;
      this.msg = f.msg;
      this.strm = f.strm;
      return ok;
    }
  }

  pako.inflate = inflate;
  pako.Inflate = NativeInflate;
  pako.__shiparrNative = true;
  return true;
}
