/**
 * Roles of API tokens, from least to most: each role may do what the roles below it may.
 * viewer: every read. operator: changes pools, backends, routes, whole configs, drains, rolls
 * back, removes disconnected nodes. admin: everything, tokens and the audit trail included.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who may call a route: anyone (`public`, no token), or a token of at least this role. */
export type Access = 'public' | Role;

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Does a token with role `held` satisfy a route that needs `needed`? */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** The authenticated caller of a request. */
export interface Principal {
  /** The token's name: what versions and the audit trail record as `actor`. */
  name: string;
  role: Role;
}
