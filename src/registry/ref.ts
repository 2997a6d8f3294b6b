/**
 * @module Image references as Docker reads them (`postgres:16`, `127.0.0.1:5000/app:1`, `ghcr.io/o/a@sha256:…`):
 * registry host, repository path, tag and digest, with Docker Hub's defaults (`docker.io`, `library/`, `latest`).
 */
import { RegistryError } from './client.ts';

export interface ImageRef {
  /** Registry host[:port] as Docker names it; Docker Hub is 'docker.io' (API host registry-1.docker.io). */
  registry: string;
  /** Repository path: 'library/postgres' for Docker Hub official images. */
  repository: string;
  /** Tag, or null when the reference has only a digest; 'latest' when neither is given. */
  tag: string | null;
  /** 'sha256:…' when the reference pins a digest. */
  digest: string | null;
}

/** Docker Hub as Docker names it in references. */
export const DOCKER_HUB = 'docker.io';

// The grammar of github.com/distribution/reference (reference.go), anchored piece by piece.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

function bad(image: string, reason: string): RegistryError {
  return new RegistryError('REGISTRY_BAD_REF', '', `invalid image reference ${JSON.stringify(image)}: ${reason}`);
}

/** Parses a compose `image:` value; throws RegistryError('REGISTRY_BAD_REF') naming the value. */
export function parseImageRef(image: string): ImageRef {
  if (typeof image !== 'string' || !image.trim()) throw bad(String(image), 'empty');
  if (image !== image.trim() || /\s/.test(image)) throw bad(image, 'contains white space');
  if (image.length > 1024) throw bad(image.slice(0, 64) + '…', 'longer than 1024 characters');

  let rest = image;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(image, `invalid digest ${JSON.stringify(digest)}`);
    if (digest.startsWith('sha256:') && !SHA256.test(digest))
      throw bad(image, 'a sha256 digest is 64 lowercase hex digits');
  }

  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(image, `invalid tag ${JSON.stringify(tag)}`);
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first component is a host when it has a dot or a port, or is `localhost`.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!DOMAIN.test(first)) throw bad(image, `invalid registry host ${JSON.stringify(first)}`);
      registry = first === 'index.docker.io' || first === 'registry-1.docker.io' ? DOCKER_HUB : first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!repository) throw bad(image, 'no repository name');
  for (const part of repository.split('/')) {
    if (!PATH_COMPONENT.test(part))
      throw bad(image, `invalid repository path component ${JSON.stringify(part)} (lowercase letters, digits, . _ -)`);
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (registry.length + repository.length + 1 > 255) throw bad(image, 'repository name longer than 255 characters');
  if (tag === null && digest === null) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** Back to the short form Docker prints ('postgres:16', '127.0.0.1:5000/app:1', 'ghcr.io/o/a@sha256:…'). */
export function formatImageRef(ref: ImageRef): string {
  let name: string;
  if (ref.registry === DOCKER_HUB) {
    const short = ref.repository.slice('library/'.length);
    name = ref.repository.startsWith('library/') && !short.includes('/') ? short : ref.repository;
  } else {
    name = `${ref.registry}/${ref.repository}`;
  }
  return `${name}${ref.tag !== null ? `:${ref.tag}` : ''}${ref.digest !== null ? `@${ref.digest}` : ''}`;
}
