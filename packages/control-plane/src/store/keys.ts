/** The etcd key layout (DESIGN.md), under a configurable prefix (default /lb). */

/** Version keys are zero-padded so etcd's byte order is numeric order (range queries, sorting). */
export const VERSION_DIGITS = 12;

export class EtcdKeys {
  readonly current: string;
  readonly versionsPrefix: string;
  readonly nodesPrefix: string;

  constructor(prefix: string) {
    const base = prefix.replace(/\/+$/, '');
    this.current = `${base}/config/current`;
    this.versionsPrefix = `${base}/config/versions/`;
    this.nodesPrefix = `${base}/nodes/`;
  }

  version(n: number): string {
    return this.versionsPrefix + String(n).padStart(VERSION_DIGITS, '0');
  }

  node(id: string): string {
    return this.nodesPrefix + id;
  }
}
