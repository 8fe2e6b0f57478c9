// Files that are either the old or the new content, never a partial one,
// even after kill -9 or a power cut: write a temporary file in the same
// folder, fsync it, rename it over the target, fsync the folder.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes all of `bytes` at the file's current position. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** fsync of a folder: makes renames and new entries in it survive a power cut. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on folders; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `path` atomically: `write(fd)` fills a temporary file, which is
 * fsynced and renamed over `path`. `beforeRename` runs between the two (a
 * test hook widens that window). On failure the temporary file is removed
 * and the old `path` is untouched.
 */
export function writeAtomic(path: string, write: (fd: number) => void, beforeRename?: () => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    beforeRename?.();
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}
