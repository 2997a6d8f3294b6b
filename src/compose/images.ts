/**
 * @module The images a compose project's services run (dockerode, main thread), and the pin override of an exact
 * rollback: a compose file Shiparr generates outside the checkout that sets each service's `image` to the exact image
 * it ran before (a repository digest `name@sha256:…` when the image has one, else the engine's image id `sha256:…`,
 * which compose accepts as an image reference), so a tag moved since cannot change what comes back.
 */
import type Dockerode from 'dockerode';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ServiceImage } from '../domain/types.ts';
import { createDocker, PROJECT_LABEL } from './verify.ts';

const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';
const NUMBER_LABEL = 'com.docker.compose.container-number';

/** The file name of the pin override inside a repository's generated directory. */
const PIN_FILE = 'image-pins.json';

/** Where the engine is: the repository's DOCKER_HOST (default: the daemon's own engine). */
interface EngineOptions {
  dockerHost?: string;
  /** The repository's engine client (TLS, ssh, contexts); wins over `dockerHost`. */
  docker?: Dockerode;
}

/** The name part of an image reference (`registry:5000/app:1` → `registry:5000/app`, `app@sha256:…` → `app`). */
function repoName(ref: string): string {
  const noDigest = ref.split('@')[0] ?? ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** The repo digest of `ref`'s repository when the image has one, else the first one it has, else null. */
function pickDigest(ref: string, digests: readonly string[] | undefined): string | null {
  if (!digests || digests.length === 0) return null;
  const name = repoName(ref);
  const short = name.replace(/^docker\.io\/(library\/)?/, '');
  return digests.find((d) => [name, short, `docker.io/library/${short}`].includes(repoName(d))) ?? digests[0] ?? null;
}

/**
 * The image each service of a compose project runs now: one entry per service (its lowest-numbered container), sorted
 * by service name. `image` is the reference the container was created with (the compose file's `image`, or the image
 * compose built), `imageId` the engine's id, `digest` a repository digest when the image has one. One-off containers
 * (`compose run`) are left out; stopped containers of the project count (a one-shot service that exited 0).
 */
export async function readServiceImages(project: string, o: EngineOptions = {}): Promise<ServiceImage[]> {
  const docker = o.docker ?? createDocker(o.dockerHost);
  const listed = await docker.listContainers({ all: true, filters: { label: [`${PROJECT_LABEL}=${project}`] } });
  const first = new Map<string, { id: string; n: number }>();
  for (const c of listed) {
    const labels = c.Labels ?? {};
    const service = labels[SERVICE_LABEL];
    if (!service || labels[ONEOFF_LABEL] === 'True') continue;
    const n = Number(labels[NUMBER_LABEL] ?? 0);
    const seen = first.get(service);
    if (!seen || n < seen.n) first.set(service, { id: c.Id, n });
  }
  const out: ServiceImage[] = [];
  for (const [service, { id }] of first) {
    const info = await docker.getContainer(id).inspect();
    const image = info.Config.Image;
    const imageId = info.Image;
    const inspected = await docker
      .getImage(imageId)
      .inspect()
      .catch(() => null);
    out.push({ service, image, imageId, digest: pickDigest(image, inspected?.RepoDigests) });
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

/** The recorded images the engine no longer has (looked up by image id). */
export async function missingImages(images: readonly ServiceImage[], o: EngineOptions = {}): Promise<ServiceImage[]> {
  const docker = o.docker ?? createDocker(o.dockerHost);
  const missing: ServiceImage[] = [];
  for (const img of images) {
    const found = await docker
      .getImage(img.imageId)
      .inspect()
      .then(
        () => true,
        (err: { statusCode?: number }) => {
          if (err.statusCode === 404) return false;
          throw err;
        },
      );
    if (!found) missing.push(img);
  }
  return missing;
}

/** The reference a service is pinned to: its repository digest when it has one, else the image id. */
function pinReference(img: ServiceImage): string {
  return img.digest ?? img.imageId;
}

/**
 * Writes the pin override (JSON, which compose reads as YAML): `services: {<svc>: {image: <pin>, pull_policy}}`,
 * `pull_policy: never` for an image id (it cannot be pulled), `missing` for a digest. Written to a temporary name and
 * renamed, so compose never reads half a file. Returns the file's absolute path.
 */
export async function writePinOverride(dir: string, images: readonly ServiceImage[]): Promise<string> {
  const services: Record<string, { image: string; pull_policy: 'never' | 'missing' }> = {};
  for (const img of images)
    services[img.service] = { image: pinReference(img), pull_policy: img.digest ? 'missing' : 'never' };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, PIN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ services }, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return file;
}

/** Removes the pin override Shiparr wrote in `dir` (nothing else); true when there was one. */
export async function removePinOverride(dir: string): Promise<boolean> {
  const file = path.join(dir, PIN_FILE);
  try {
    await rm(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
