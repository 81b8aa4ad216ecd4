/**
 * X-Request-Id for requests that come without one: unique per process without a random draw per
 * request — a random prefix chosen at start, then a counter. 16 random bits of prefix per process
 * plus the pid keep ids of different processes and restarts apart.
 */
import { randomBytes } from 'node:crypto';

export class RequestIds {
  private readonly prefix: string;
  private seq = 0;

  constructor(prefix = `${randomBytes(6).toString('hex')}-${process.pid.toString(36)}-`) {
    this.prefix = prefix;
  }

  next(): string {
    return this.prefix + (++this.seq).toString(36);
  }
}
