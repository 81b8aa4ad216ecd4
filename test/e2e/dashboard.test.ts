// The dashboard at /ui (issue 15, point 4) in a real Chromium (Debian's `chromium`, driven by
// playwright-core) against a real stack: it asks for a token and keeps it in the tab, shows the
// nodes with their versions and the pools with their backends and traffic, shows a diff side by
// side, and a click on rollback (confirmed) makes a new version the data planes ACK. It saves a
// screenshot of each view to .cache/dashboard/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN } from '../support/auth.js';
import { Backend } from '../support/backends.js';
import { EtcdServer } from '../support/etcd.js';
import { api } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '../../.cache/dashboard');

let etcd: EtcdServer;
let cp: ControlPlane;
let dps: DataPlane[] = [];
let web: Backend;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  etcd = await EtcdServer.start();
  cp = await ControlPlane.start({ etcd: etcd.url });
  web = await Backend.start('web');
  const config = {
    pools: { web: { backends: [{ id: 'web-1', address: web.address }] } },
    routes: { site: { match: { pathPrefix: '/' }, pools: [{ pool: 'web' }] } },
  };
  expect((await api('PUT', `${cp.url}/v1/config`, config)).status).toBe(200);
  expect((await api('PATCH', `${cp.url}/v1/pools/web/backends/web-1`, { weight: 3 })).status).toBe(200);
  dps = await Promise.all(
    ['dp-a', 'dp-b'].map((nodeId) => DataPlane.start({ controlPlanes: [cp.grpcAddress], nodeId, extraArgs: ['--traffic-report-ms', '500'] })),
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  mkdirSync(SHOTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await Promise.allSettled(dps.map((dp) => dp.stop()));
  await cp?.stop();
  await web?.close();
  await etcd?.stop();
});

async function shoot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

describe('the dashboard in Chromium', () => {
  it('asks for a token, then shows the nodes and the versions they run', async () => {
    await page.goto(`${cp.url}/ui`);
    await page.locator('#login').waitFor();
    await page.fill('#token', 'lb_wrong_token');
    await page.click('#login button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toContain('not valid');
    await page.fill('#token', TEST_ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    const nodes = page.locator('#nodes-table');
    await nodes.waitFor();
    await expect.poll(() => page.locator('#nodes-table tbody tr').count()).toBe(2);
    await expect.poll(() => page.textContent('h2')).toContain('current version 2, 2 of 2 connected nodes run it');
    expect(await page.textContent('tr[data-node="dp-a"]')).toContain('connected');
    // The token lives in this tab only.
    expect(await page.evaluate("[sessionStorage.getItem('lb.token') !== null, localStorage.length]")).toEqual([true, 0]);
    await shoot('nodes');
  });

  it('shows pools with their backends, health and live traffic', async () => {
    // Each report covers one 500 ms window and the page refreshes every 2 s, so traffic keeps
    // flowing (bounded in count and time) until the page shows a rate above zero.
    let sending = true;
    const traffic = (async () => {
      const until = Date.now() + 20_000;
      for (let i = 0; sending && i < 2_000 && Date.now() < until; i++) {
        await (await request(`${dps[0]!.url}/x`)).body.dump();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      await page.click('a[data-tab=pools]');
      const row = page.locator('tr[data-backend="web/web-1"]');
      await row.waitFor();
      expect(await row.textContent()).toContain(web.address);
      await expect.poll(async () => page.textContent('h2'), { timeout: 15_000 }).toMatch(/Pool web — (?!0 )[\d.]+ req\/s, 0 % errors/);
    } finally {
      sending = false;
      await traffic;
    }
    await shoot('pools');
  });

  it('shows a diff side by side, and a confirmed rollback makes a version the data planes ACK', async () => {
    await page.click('a[data-tab=versions]');
    await page.locator('tr[data-version="2"] .diff-button').click();
    const diff = page.locator('#diff-table');
    await diff.waitFor();
    const cells = await diff.locator('tbody tr').first().locator('td').allTextContents();
    expect(cells).toEqual(['change', 'pools.web.backends.web-1.weight', '1', '3']);
    await shoot('diff');
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await page.locator('tr[data-version="1"] .rollback-button').click();
    await expect.poll(() => page.textContent('#rollback-result')).toContain('version 3 has the config of version 1');
    expect(asked).toContain('Roll back to version 1?');
    await waitFor(async () => (await Promise.all(dps.map((dp) => dp.appliedVersion()))).every((v) => v === 3), { message: 'both nodes run version 3' });
    expect((await api('GET', `${cp.url}/v1/versions/3`)).body).toMatchObject({ rollbackOf: 1, actor: 'bootstrap-admin' });
    await page.click('a[data-tab=nodes]');
    await expect.poll(() => page.textContent('h2')).toContain('current version 3, 2 of 2 connected nodes run it');
    await shoot('after-rollback');
  });

  it('rolls nothing back when the confirmation is dismissed', async () => {
    await page.click('a[data-tab=versions]');
    await page.locator('tr[data-version="2"]').waitFor();
    let asked = false;
    page.once('dialog', (dialog) => {
      asked = true;
      void dialog.dismiss();
    });
    await page.locator('tr[data-version="2"] .rollback-button').click();
    expect(asked).toBe(true);
    // A refresh later (every 2 s, the time shown to the second) the page has had every chance to send something.
    const before = await page.textContent('#status');
    await expect.poll(() => page.textContent('#status'), { timeout: 5_000 }).not.toBe(before);
    expect((await api('GET', `${cp.url}/v1/config`)).body.version).toBe(3);
    expect(await page.locator('#rollback-result').count()).toBe(0);
  });
});
