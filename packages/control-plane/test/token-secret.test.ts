import { describe, expect, it } from 'vitest';
import { hashSecret, nameInSecret, newSecret, verifySecret } from '../src/auth/token-secret.js';

describe('token secrets', () => {
  it('name the token they belong to, and nothing else parses as one', () => {
    const secret = newSecret('ci-deploy');
    expect(secret).toMatch(/^lb_ci-deploy_[0-9a-f]{64}$/);
    expect(nameInSecret(secret)).toBe('ci-deploy');
    for (const bad of ['', 'lb_ci_xyz', `lb_CI_${'0'.repeat(64)}`, `lb__${'0'.repeat(64)}`, `x${secret}`]) expect(nameInSecret(bad)).toBeUndefined();
  });

  it('store a salted scrypt hash that verifies the secret and nothing else', async () => {
    const secret = newSecret('a');
    const hash = await hashSecret(secret);
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(hash).not.toContain(secret.slice(5));
    expect(await hashSecret(secret)).not.toBe(hash);
    expect(await verifySecret(secret, hash)).toBe(true);
    expect(await verifySecret(newSecret('a'), hash)).toBe(false);
    expect(await verifySecret(secret, 'md5$whatever')).toBe(false);
  });
});
