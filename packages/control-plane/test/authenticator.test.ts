import { describe, expect, it } from 'vitest';
import { Authenticator } from '../src/auth/authenticator.js';
import { FailureThrottle } from '../src/auth/failure-throttle.js';
import { hashSecret, newSecret } from '../src/auth/token-secret.js';
import { MemoryTokenStore, type TokenRecord } from '../src/auth/token-store.js';
import { ApiError } from '../src/errors.js';

async function token(name: string, role: TokenRecord['role'], extra: Partial<TokenRecord> = {}): Promise<{ secret: string; record: TokenRecord }> {
  const secret = newSecret(name);
  return { secret, record: { name, role, createdAt: new Date().toISOString(), createdBy: 'test', hash: await hashSecret(secret), ...extra } };
}

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe('LB_CP_UNAUTHENTICATED');
  return err as ApiError;
}

function setup(now = () => new Date()) {
  const tokens = new MemoryTokenStore();
  const throttle = new FailureThrottle({ freeFailures: 2, baseDelayMs: 1 });
  const auth = new Authenticator({ tokens, throttle, bootstrapSecret: 'the-bootstrap-secret-1234', now });
  return { tokens, throttle, auth };
}

describe('Authenticator', () => {
  it('accepts the bootstrap secret as admin and API tokens with their role', async () => {
    const { tokens, auth } = setup();
    expect(await auth.authenticate('Bearer the-bootstrap-secret-1234', '10.0.0.1')).toEqual({ name: 'bootstrap-admin', role: 'admin' });
    const viewer = await token('dash', 'viewer');
    await tokens.create(viewer.record);
    expect(await auth.authenticate(`Bearer ${viewer.secret}`, '10.0.0.1')).toEqual({ name: 'dash', role: 'viewer' });
    // Remembered after the first check: the same answer without a second slow hash.
    expect(await auth.authenticate(`bearer  ${viewer.secret}`, '10.0.0.1')).toEqual({ name: 'dash', role: 'viewer' });
  });

  it('refuses a missing, malformed, unknown or wrong token, and counts only presented ones as failures', async () => {
    const { tokens, throttle, auth } = setup();
    const real = await token('ops', 'operator');
    await tokens.create(real.record);
    expect((await refusal(auth.authenticate(undefined, 'x'))).detail).toMatch(/needs a token/);
    expect(throttle.delayFor('x')).toBe(0);
    expect((await refusal(auth.authenticate('Basic abc', 'x'))).detail).toMatch(/Bearer <token>/);
    await refusal(auth.authenticate(`Bearer ${newSecret('nobody')}`, 'x'));
    await refusal(auth.authenticate(`Bearer ${newSecret('ops')}`, 'x'));
    expect(throttle.delayFor('x')).toBeGreaterThan(0);
  });

  it('stops accepting a token the moment its record is deleted or replaced, even once remembered', async () => {
    const { tokens, auth } = setup();
    const first = await token('ci', 'operator');
    await tokens.create(first.record);
    await auth.authenticate(`Bearer ${first.secret}`, 'x');
    await tokens.delete('ci');
    await refusal(auth.authenticate(`Bearer ${first.secret}`, 'x'));
    // Recreated under the same name with a new secret: the old secret stays refused.
    const second = await token('ci', 'operator');
    await tokens.create(second.record);
    await refusal(auth.authenticate(`Bearer ${first.secret}`, 'x'));
    expect(await auth.authenticate(`Bearer ${second.secret}`, 'x')).toEqual({ name: 'ci', role: 'operator' });
  });

  it('refuses an expired token, even one verified before it expired', async () => {
    let now = new Date('2027-01-01T00:00:00Z');
    const { tokens, auth } = setup(() => now);
    const t = await token('temp', 'viewer', { expiresAt: '2027-01-01T01:00:00.000Z' });
    await tokens.create(t.record);
    expect(await auth.authenticate(`Bearer ${t.secret}`, 'x')).toEqual({ name: 'temp', role: 'viewer' });
    now = new Date('2027-01-01T01:00:00Z');
    expect((await refusal(auth.authenticate(`Bearer ${t.secret}`, 'x'))).detail).toMatch(/expired at 2027-01-01T01:00:00.000Z/);
  });
});
