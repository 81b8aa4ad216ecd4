/**
 * Which malloc the data plane runs on, and how a launcher gives it jemalloc.
 *
 * Node's HTTP/2 (nghttp2 and node's own per-stream objects), its write requests and its socket
 * reads allocate and free native memory on every request. Under h2 load glibc's malloc is 7–8 % of
 * the data plane's samples (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`); jemalloc
 * (Debian's `libjemalloc2`) serves the same from thread caches. Measured on AMD EPYC in alternating
 * pairs of two stacks (bench/README.md, "Allocator"): about 6 % more HTTP/2 requests/s. Envoy
 * links tcmalloc for the same reason.
 *
 * The allocator is chosen when the process starts (`LD_PRELOAD`), so this module cannot switch
 * it: launchers (deploy/, bench/, the tests' harness, the container image, the systemd unit) ask
 * withJemalloc() for the environment to start the data plane with, and the process reports what
 * it got (allocatorInUse) in its "data plane listening" line. Workers of a `--workers N` node
 * inherit their primary's environment, so they run on what it was started with.
 */
import { existsSync, readFileSync } from 'node:fs';

export const JEMALLOC_FILE = 'libjemalloc.so.2';

/** Where Debian (multiarch), other glibc distributions and source builds put shared libraries. */
function libraryDirs(): string[] {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : process.arch === 'x64' ? 'x86_64-linux-gnu' : undefined;
  return [...(triplet === undefined ? [] : [`/usr/lib/${triplet}`, `/lib/${triplet}`]), '/usr/lib64', '/usr/lib', '/usr/local/lib'];
}

/** The path of jemalloc's shared library on this machine, or undefined when it is not installed. */
export function jemallocLibrary(dirs: readonly string[] = libraryDirs(), exists: (path: string) => boolean = existsSync): string | undefined {
  if (process.platform !== 'linux') return undefined;
  for (const dir of dirs) {
    const path = `${dir}/${JEMALLOC_FILE}`;
    if (exists(path)) return path;
  }
  return undefined;
}

/**
 * `env` with jemalloc (`library`; null: not installed) preloaded ahead of whatever LD_PRELOAD
 * already held; `env` itself when jemalloc is not installed or already preloaded. Only for the
 * data plane's own processes: a launcher passes the result as the environment of `lb-data-plane`.
 */
export function withJemalloc(env: NodeJS.ProcessEnv, library: string | null = jemallocLibrary() ?? null): NodeJS.ProcessEnv {
  const preload = env.LD_PRELOAD ?? '';
  if (library === null || preload.includes('jemalloc')) return env;
  return { ...env, LD_PRELOAD: preload === '' ? library : `${library} ${preload}` };
}

/** `system`: the C library's own malloc (glibc's on Linux). */
export type Allocator = 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'system';

/** The malloc this process runs on, from the libraries mapped into it (`/proc/self/maps`). */
export function allocatorInUse(maps: string | undefined = readMaps()): Allocator {
  if (maps === undefined) return 'system';
  if (maps.includes('libjemalloc')) return 'jemalloc';
  if (maps.includes('libtcmalloc')) return 'tcmalloc';
  if (maps.includes('libmimalloc')) return 'mimalloc';
  return 'system';
}

function readMaps(): string | undefined {
  try {
    return readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return undefined;
  }
}
