/** @module Public API of the SOPS/age layer (pure TypeScript; no sops or age binaries). */
export { AgeIdentity, ageDecrypt, parseAgeIdentity } from './age.ts';
export { SopsError } from './errors.ts';
export type { SopsErrorCode } from './errors.ts';
export { writeFileAtomic0600 } from './fs.ts';
export { loadAgeIdentities, parseAgeIdentities } from './keys.ts';
export type { AgeKeyring, AgeKeySources } from './keys.ts';
export {
  decryptSopsDocument,
  decryptSopsDocumentWithDataKey,
  decryptSopsFile,
  inferFormat,
  MAX_SOPS_FILE_BYTES,
  recoverDataKey,
} from './sops.ts';
export type { DecryptFileOptions, Identities, SopsFormat } from './sops.ts';
