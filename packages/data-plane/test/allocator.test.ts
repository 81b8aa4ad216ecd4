import { describe, expect, it } from 'vitest';
import { allocatorInUse, jemallocLibrary, withJemalloc } from '../src/runtime/allocator.js';

const LIB = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

describe('allocator', () => {
  it('finds jemalloc in the first library directory that has it', () => {
    const present = new Set(['/usr/lib64/libjemalloc.so.2', '/usr/local/lib/libjemalloc.so.2']);
    const has = (path: string): boolean => present.has(path);
    expect(jemallocLibrary(['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/local/lib'], has)).toBe('/usr/lib64/libjemalloc.so.2');
    expect(jemallocLibrary(['/usr/lib'], has)).toBeUndefined();
  });

  it('preloads jemalloc ahead of what LD_PRELOAD held, once, and only when it is installed', () => {
    expect(withJemalloc({ PATH: '/bin' }, LIB)).toEqual({ PATH: '/bin', LD_PRELOAD: LIB });
    expect(withJemalloc({ LD_PRELOAD: '/opt/trace.so' }, LIB)).toEqual({ LD_PRELOAD: `${LIB} /opt/trace.so` });
    const already = { LD_PRELOAD: '/usr/lib64/libjemalloc.so.2' };
    expect(withJemalloc(already, LIB)).toBe(already);
    const env = { PATH: '/bin' };
    expect(withJemalloc(env, null)).toBe(env);
  });

  it('tells the malloc in use from the libraries mapped into the process', () => {
    const line = (path: string): string => `7f0c1a000000-7f0c1a020000 r-xp 00000000 08:01 123 ${path}\n`;
    expect(allocatorInUse(line('/usr/lib/x86_64-linux-gnu/libc.so.6') + line(LIB))).toBe('jemalloc');
    expect(allocatorInUse(line('/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4'))).toBe('tcmalloc');
    expect(allocatorInUse(line('/usr/lib/x86_64-linux-gnu/libc.so.6'))).toBe('system');
    expect(allocatorInUse(undefined)).toBe('system');
  });
});
