/**
 * Free space on the disk of an embedded store. A PGlite store on a full disk fails to open with
 * "Aborted()" — indistinguishable from a damaged one — and the advice for a damaged store (restore a
 * backup, start a new directory) loses data that is intact once space is freed (an adversarial pass
 * filled a 40 MB volume with a worker's runs: the store opened with all its runs after the volume grew).
 */
import { statfsSync } from 'node:fs';

/**
 * Below this much free space a store's failure to open is reported as the disk's. A PGlite start
 * replays and checkpoints its write-ahead log, whose segments are 16 MB each; the full volume above had
 * 4 KB left.
 */
const LOW_SPACE_BYTES = 64 * 1024 * 1024;

/** The free space on `dir`'s disk, in words, when it is low enough to explain a failure there; else null. */
export function lowDiskSpace(dir: string): string | null {
  try {
    const fs = statfsSync(dir);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (free >= LOW_SPACE_BYTES) return null;
    return free < 1024 * 1024 ? `${Math.floor(free / 1024)} KB` : `${(free / (1024 * 1024)).toFixed(1)} MB`;
  } catch {
    return null;
  }
}
