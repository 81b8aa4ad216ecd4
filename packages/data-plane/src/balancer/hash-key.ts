/** The key a hash-based pool hashes, read from the request as `hashOn` says. */
import type { HashOn } from '@lb/shared';
import type { PickContext } from './balancer.js';

export type HashKeyReader = (ctx: PickContext) => string | undefined;

/** Built once per balancer, so a pick does no string work beyond reading the key itself. */
export function hashKeyReader(on: HashOn): HashKeyReader {
  const name = on.name ?? '';
  switch (on.source) {
    case 'ip':
      return (ctx) => ctx.clientIp();
    case 'header': {
      const lower = name.toLowerCase();
      return (ctx) => ctx.header(lower);
    }
    case 'cookie':
      return (ctx) => ctx.cookie(name);
    case 'path':
      return (ctx) => ctx.path();
    case 'query':
      return (ctx) => ctx.query(name);
  }
}
