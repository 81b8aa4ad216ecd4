// Issue 13 end to end, with the L4 listeners on net.Socket (--l4-io sockets, where raw handles fail their self-test): l4-suite.ts.
import { l4Suite } from './l4-suite.js';

l4Suite('sockets');
