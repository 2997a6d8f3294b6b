/**
 * @module The image watch of a repository on its page (`image_updates`): per service the image, whether its tag still
 * names the digest that runs, a newer tag within the policy, the reason of an error or a skip, and when it was
 * checked, from `GET api/repositories/:id/images`; "Check images" asks for a check now (`POST …/images/check`).
 * Nothing is shown while the watch is off for the repository or absent from the process.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ImageWatchEntry } from '../src/domain/types.ts';
import { ApiError, getJson, post, repoPath } from './api.ts';
import { Badge, Time } from './common.tsx';
import { onEvent, onReconnect } from './live.ts';

/** The answer of the images endpoint (the fields the page shows). */
interface ImagesReport {
  mode: 'off' | 'notify' | 'auto';
  interval: number | null;
  services: Pick<
    ImageWatchEntry,
    'service' | 'image' | 'localDigest' | 'remoteDigest' | 'status' | 'reason' | 'checkedAt' | 'newerTag'
  >[];
}

/** `sha256:0123456789ab` (enough to tell two digests apart). */
const digest = (d: string | null): string => (d ? d.slice(0, 19) : '–');

/** After "Check images": how often and how long the page asks again for a newer `checkedAt`. */
const RECHECK_MS = 2_000;
const RECHECK_TRIES = 15;

/** The image watch section of a repository page (hidden when the watch is off). */
export function ImagesPanel({ id, repoKey, now }: { id: number; repoKey: string; now: number }) {
  const [report, setReport] = useState<ImagesReport | null>(null);
  const [note, setNote] = useState<{ error: boolean; text: string } | null>(null);
  const [checking, setChecking] = useState(false);
  const load = (): Promise<ImagesReport | null> =>
    getJson<ImagesReport>(`${repoPath(id)}/images`).then(
      (r) => {
        setReport(r);
        return r;
      },
      // 503: this process has no image watch; any other error leaves the last answer shown.
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 503) setReport(null);
        return null;
      },
    );
  useEffect(() => {
    void load();
    // A finished deployment of this repository changes what runs: read the watch again.
    const offEvent = onEvent((e) => {
      if (e.type === 'deployment.finished' && e.repoKey === repoKey) void load();
    });
    const offReconnect = onReconnect(() => void load());
    return () => {
      offEvent();
      offReconnect();
    };
  }, [id, repoKey]);

  const checkNow = async () => {
    setChecking(true);
    setNote(null);
    const seen = (r: ImagesReport | null) =>
      Math.max(0, ...(r?.services ?? []).map((s) => Date.parse(s.checkedAt ?? '')));
    const before = seen(report);
    try {
      await post(`${repoPath(id)}/images/check`);
      setNote({ error: false, text: 'Check started.' });
      // The check runs in the background: ask again until a service shows a newer check time.
      for (let i = 0; i < RECHECK_TRIES; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
        if (seen(await load()) > before) {
          setNote({ error: false, text: 'Checked.' });
          break;
        }
      }
    } catch (err) {
      setNote({ error: true, text: err instanceof Error ? err.message : String(err) });
    } finally {
      setChecking(false);
    }
  };

  if (!report || report.mode === 'off') return null;
  return (
    <section aria-labelledby="images-title">
      <h2 id="images-title">Images</h2>
      <p class="muted">
        Image updates: {report.mode}
        {report.interval ? `, checked every ${Math.round(report.interval / 60)} min` : ''}.{' '}
        <button type="button" onClick={() => void checkNow()} disabled={checking}>
          Check images
        </button>
      </p>
      <div role="status" aria-live="polite">
        {note ? <p class={note.error ? 'error' : 'muted'}>{note.text}</p> : null}
      </div>
      {report.services.length === 0 ? (
        <p class="muted">No service checked yet.</p>
      ) : (
        <table class="containers images">
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col">Image</th>
              <th scope="col">Status</th>
              <th scope="col">Running → registry</th>
              <th scope="col">Checked</th>
            </tr>
          </thead>
          <tbody>
            {report.services.map((s) => (
              <tr key={s.service} data-service={s.service} data-status={s.status}>
                <td data-label="Service">{s.service}</td>
                <td data-label="Image">
                  <code>{s.image}</code>
                </td>
                <td data-label="Status">
                  <Badge value={s.status} />
                  {s.newerTag ? (
                    <>
                      {' '}
                      newer tag <code>{s.newerTag}</code>
                    </>
                  ) : null}
                  {s.reason ? <span class={s.status === 'error' ? 'error' : 'muted'}> {s.reason}</span> : null}
                </td>
                <td data-label="Running → registry">
                  <code>{digest(s.localDigest)}</code>
                  {s.remoteDigest !== s.localDigest ? (
                    <>
                      {' → '}
                      <code>{digest(s.remoteDigest)}</code>
                    </>
                  ) : null}
                </td>
                <td data-label="Checked">
                  <Time at={s.checkedAt} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
