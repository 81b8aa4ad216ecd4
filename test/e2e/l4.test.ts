// Issue 13 end to end, with the L4 listeners on libuv handles (--l4-io handles, the default): l4-suite.ts.
import { l4Suite } from './l4-suite.js';

l4Suite('handles');
