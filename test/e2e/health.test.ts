// Issue 4 end to end: real etcd, two control-plane replicas, two data planes and real backends
// under load. Proves: failing /health takes a backend out of rotation on every data plane within
// intervalMs × unhealthyThreshold + 1 s and back after recovery without a config version; 5xx
// traffic ejects locally after consecutive5xx; panic keeps traffic flowing when every check
// fails; slow start ramps; draining finishes in-flight work and cuts it at drainTimeoutMs;
// self-registered backends live on a lease; only one replica probes, and killing it hands
// probing over within 5 s; SIGTERM drains a data plane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdServer } from '../support/etcd.js';
import { HealthBackend, Load } from '../support/health-backend.js';
import { api, distribution } from '../support/http.js';
import { ControlPlane, DataPlane } from '../support/planes.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdServer;
let cpA: ControlPlane;
let cpB: ControlPlane;
let dps: DataPlane[];
let b: HealthBackend[];

const CHECK = { intervalMs: 300, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 3 };

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cpA = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-a'] });
  cpB = await ControlPlane.start({ etcd: etcd.url, extraArgs: ['--replica-id', 'cp-b'] });
  b = await Promise.all(['b1', 'b2', 'b3', 'b4'].map((n) => HealthBackend.start(n)));
  // Each data plane starts on a different replica, so both replicas' health feeds are exercised.
  // dp-1 runs one process, so its request order and its outlier counts are exact; dp-2 runs two
  // worker processes, so health must reach every worker.
  dps = [
    await DataPlane.start({ controlPlanes: [cpA.grpcAddress, cpB.grpcAddress], nodeId: 'dp-1', extraArgs: ['--workers', '1'] }),
    await DataPlane.start({ controlPlanes: [cpB.grpcAddress, cpA.grpcAddress], nodeId: 'dp-2', workers: 2 }),
  ];
});

afterAll(async () => {
  await Promise.allSettled((dps ?? []).map((d) => d.stop()));
  await Promise.allSettled([cpA?.stop(), cpB?.stop()]);
  await Promise.allSettled((b ?? []).map((x) => x.close()));
  await etcd?.stop();
});

async function cpMetrics(cp: ControlPlane): Promise<string> {
  const res = await api<string>('GET', `${cp.url}/metrics`);
  return res.body;
}

/** The value of one exact sample line in a Prometheus text exposition (0 when absent). */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

function cpUrl(): string {
  return cpA.process.running ? cpA.url : cpB.url;
}

async function applyConfig(config: unknown): Promise<number> {
  const res = await api('PUT', `${cpUrl()}/v1/config`, config);
  if (res.status !== 200) throw new Error(`PUT /v1/config → ${res.status} ${JSON.stringify(res.body)}`);
  await converge(res.body.version as number);
  return res.body.version as number;
}

async function converge(version: number): Promise<void> {
  for (const dp of dps.filter((d) => d.process.running)) {
    await waitFor(async () => (await dp.appliedVersion()) === version, { message: `${dp.options.nodeId} to apply version ${version}` });
  }
}

interface DpView {
  version: number;
  pools: Record<string, { backends: Array<{ id: string }> }>;
  health: { revision: number; backends: Record<string, Record<string, { status: string }>> };
  eligibility: Record<string, { active: number; eligible: number; panic: boolean; ramping: string[] }>;
  ejections: Array<{ pool: string; backendId: string }>;
}

async function view(dp: DataPlane): Promise<DpView> {
  return (await (await fetch(`${dp.adminUrl}/config`)).json()) as DpView;
}

async function dpStatus(dp: DataPlane, pool: string, id: string): Promise<string> {
  return (await view(dp)).health.backends[pool]?.[id]?.status ?? 'unknown';
}

function member(x: HealthBackend, extra: Record<string, unknown> = {}) {
  return { id: x.name, address: x.address, ...extra };
}

async function cpHealth(pool: string) {
  const res = await api('GET', `${cpUrl()}/v1/pools/${pool}/health`);
  expect(res.status).toBe(200);
  return res.body as {
    revision: number;
    backends: Array<{
      id: string;
      status: string;
      since: string | null;
      lastProbe: any;
      consecutive: number;
      registered: boolean;
      ejections: Array<{ node: string; reason: string }>;
    }>;
  };
}

describe('active health checks', () => {
  it('takes a backend whose /health fails out of rotation on every data plane in time, and back, without a config version', async () => {
    const version = await applyConfig({
      pools: { web: { algorithm: 'round_robin', backends: [member(b[0]!), member(b[1]!), member(b[2]!)], healthCheck: CHECK } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    await waitFor(async () => (await cpHealth('web')).backends.every((x) => x.status === 'healthy'), { message: 'every backend healthy' });
    for (const dp of dps) await waitFor(async () => (await view(dp)).eligibility.web?.eligible === 3, { message: 'three eligible backends' });

    const loads = dps.map((dp) => new Load(`${dp.url}/`, 3));
    try {
      b[1]!.healthStatus = 503;
      const deadline = Date.now() + CHECK.intervalMs * CHECK.unhealthyThreshold + 1_000;
      for (const dp of dps) {
        await waitFor(async () => (await dpStatus(dp, 'web', 'b2')) === 'unhealthy', {
          timeoutMs: Math.max(1, deadline - Date.now()),
          intervalMs: 20,
          message: `${dp.options.nodeId} to see b2 unhealthy`,
        });
      }
      const b2Hits = b[1]!.hits;
      const othersBefore = [b[0]!.hits, b[2]!.hits];
      for (const dp of dps) {
        const seen = await distribution(`${dp.url}/`, 30);
        expect(seen).not.toHaveProperty('b2');
      }
      // Nobody, neither this client nor the load loops, sent b2 anything; b1 and b3 both took
      // traffic. (One client's own sequence can alias onto one backend while load loops share the
      // same round robin, so the two are counted at the backends, not per client.)
      expect(b[1]!.hits).toBe(b2Hits);
      expect(b[0]!.hits).toBeGreaterThan(othersBefore[0]!);
      expect(b[2]!.hits).toBeGreaterThan(othersBefore[1]!);
      // Health is not config: no version was created, and every node still runs the same one.
      expect((await api('GET', `${cpUrl()}/v1/config`)).body.version).toBe(version);
      for (const dp of dps) expect(await dp.appliedVersion()).toBe(version);
      const record = (await cpHealth('web')).backends.find((x) => x.id === 'b2')!;
      expect(record).toMatchObject({ status: 'unhealthy', lastProbe: { ok: false, detail: 'HTTP 503' } });
      expect(record.consecutive).toBeGreaterThanOrEqual(CHECK.unhealthyThreshold);
      // The leader's metrics count each backend's probes by result, and time them per pool.
      const probes = await Promise.all([cpA, cpB].map((cp) => cpMetrics(cp)));
      const sum = (name: string) => probes.reduce((n, text) => n + sample(text, name), 0);
      expect(sum('lb_cp_health_backend_probes_total{pool="web",backend="b2",result="fail"}')).toBeGreaterThanOrEqual(CHECK.unhealthyThreshold);
      expect(sum('lb_cp_health_backend_probes_total{pool="web",backend="b1",result="ok"}')).toBeGreaterThan(0);
      expect(sum('lb_cp_health_probe_seconds_count{pool="web"}')).toBeGreaterThan(0);

      b[1]!.healthStatus = 200;
      const back = Date.now() + CHECK.intervalMs * CHECK.healthyThreshold + 1_000;
      for (const dp of dps) {
        await waitFor(async () => (await dpStatus(dp, 'web', 'b2')) === 'healthy', {
          timeoutMs: Math.max(1, back - Date.now()),
          intervalMs: 20,
          message: `${dp.options.nodeId} to see b2 healthy again`,
        });
      }
      for (const dp of dps) expect(Object.keys(await distribution(`${dp.url}/`, 30)).sort()).toEqual(['b1', 'b2', 'b3']);
      expect((await api('GET', `${cpUrl()}/v1/config`)).body.version).toBe(version);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
    // Under load the whole time, and no client request failed.
    for (const l of loads) {
      expect(l.failures).toEqual([]);
      expect(l.total).toBeGreaterThan(50);
    }
  });

  it('GET /v1/pools/{pool}/health shows status, since, last probe and the run length per backend', async () => {
    const health = await cpHealth('web');
    expect(health.revision).toBeGreaterThan(0);
    expect(health.backends.map((x) => x.id)).toEqual(['b1', 'b2', 'b3']);
    for (const x of health.backends) {
      expect(x).toMatchObject({ status: 'healthy', registered: false, ejections: [], lastProbe: { ok: true, detail: 'HTTP 200' } });
      expect(Date.parse(x.since!)).toBeGreaterThan(0);
      expect(typeof x.lastProbe.latencyMs).toBe('number');
      expect(Date.parse(x.lastProbe.at)).toBeGreaterThan(0);
      expect(x.consecutive).toBeGreaterThanOrEqual(1);
    }
    const missing = await api('GET', `${cpUrl()}/v1/pools/nope/health`);
    expect(missing.status).toBe(404);
  });

  it('keeps traffic flowing across every backend when every /health fails (panic)', async () => {
    for (const x of b.slice(0, 3)) x.healthStatus = 500;
    try {
      for (const dp of dps) {
        await waitFor(
          async () => {
            const v = await view(dp);
            return ['b1', 'b2', 'b3'].every((id) => v.health.backends.web?.[id]?.status === 'unhealthy') && v.eligibility.web?.panic === true;
          },
          { message: `${dp.options.nodeId} in panic` },
        );
        const res = await distribution(`${dp.url}/`, 30);
        expect(Object.keys(res).sort()).toEqual(['b1', 'b2', 'b3']);
      }
    } finally {
      for (const x of b.slice(0, 3)) x.healthStatus = 200;
    }
    for (const dp of dps) await waitFor(async () => (await view(dp)).eligibility.web?.panic === false, { message: 'panic over' });
  });
});

describe('outlier detection', () => {
  it('ejects a backend answering 5xx after consecutive5xx, on that data plane only, and reports it', async () => {
    await applyConfig({
      pools: {
        web: {
          algorithm: 'round_robin',
          backends: [member(b[0]!), member(b[1]!), member(b[2]!)],
          outlierDetection: { consecutive5xx: 3, baseEjectionMs: 3000, maxEjectionPercent: 50, intervalMs: 1000 },
        },
      },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const [dp1, dp2] = dps as [DataPlane, DataPlane];
    b[2]!.trafficStatus = 500;
    let fiveHundreds = 0;
    try {
      for (let i = 0; i < 40 && fiveHundreds < 3; i++) {
        const res = await fetch(`${dp1.url}/`);
        await res.arrayBuffer();
        if (res.status === 500) fiveHundreds++;
      }
      expect(fiveHundreds).toBe(3);
      // Ejected at once: the very next requests avoid it.
      const after = await distribution(`${dp1.url}/`, 20);
      expect(Object.keys(after).sort()).toEqual(['b1', 'b2']);
      expect((await view(dp1)).ejections).toMatchObject([{ pool: 'web', backendId: 'b3' }]);
      // Local: the other data plane saw no failures and ejected nothing.
      expect((await view(dp2)).ejections).toEqual([]);
      // Reported to the control plane, visible per node on any replica.
      await waitFor(async () => (await cpHealth('web')).backends.find((x) => x.id === 'b3')?.ejections.some((e) => e.node === 'dp-1'), {
        message: 'the ejection report',
      });
    } finally {
      b[2]!.trafficStatus = undefined;
    }
    // Back after the ejection time.
    await waitFor(async () => (await view(dp1)).ejections.length === 0, { timeoutMs: 6_000, message: 'b3 back from ejection' });
    expect(Object.keys(await distribution(`${dp1.url}/`, 15)).sort()).toEqual(['b1', 'b2', 'b3']);
  });
});

describe('slow start', () => {
  it('ramps a new backend from about 10% of its weight to all of it over slowStartMs', async () => {
    await applyConfig({
      pools: { web: { algorithm: 'weighted_round_robin', slowStartMs: 4000, backends: [member(b[0]!), member(b[1]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = dps[0]!;
    const put = await api('PUT', `${cpUrl()}/v1/pools/web/backends/b3`, { address: b[2]!.address });
    expect(put.status).toBe(200);
    await converge(put.body.version);
    const early = await distribution(`${dp.url}/`, 60);
    const ramping = (await view(dp)).eligibility.web?.ramping;
    await waitFor(async () => (await view(dp)).eligibility.web?.ramping.length === 0, { timeoutMs: 8_000, message: 'the ramp to end' });
    const late = await distribution(`${dp.url}/`, 60);
    const share = (d: Record<string, number>) => (d.b3 ?? 0) / 60;
    expect(ramping).toEqual(['b3']);
    expect(share(early)).toBeLessThan(0.2);
    expect(share(late)).toBeGreaterThan(0.28);
    expect(share(late)).toBeGreaterThan(share(early) * 2);
  });
});

describe('draining', () => {
  it('a draining backend finishes a 2-second request with 200 and gets nothing new', async () => {
    const version = await applyConfig({
      pools: { web: { algorithm: 'round_robin', backends: [member(b[0]!), member(b[1]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = dps[0]!;
    const probe = await fetch(`${dp.url}/`);
    await probe.arrayBuffer();
    const next = probe.headers.get('x-backend') === 'b1' ? b[1]! : b[0]!;
    const slow = fetch(`${dp.url}/slow?ms=2000`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await waitFor(() => next.active === 1, { message: 'the slow request to reach its backend' });
    const patch = await api('PATCH', `${cpUrl()}/v1/pools/web/backends/${next.name}`, { state: 'draining' }, { 'if-match': `"${version}"` });
    expect(patch.status).toBe(200);
    await converge(patch.body.version);
    const hits = next.hits;
    const seen = await distribution(`${dp.url}/`, 20);
    expect(Object.keys(seen)).toEqual([next === b[0] ? 'b2' : 'b1']);
    expect(next.hits).toBe(hits);
    const finished = await slow;
    expect(finished).toEqual({ status: 200, body: `${next.name} slow 2000\n` });
  });

  it('cuts a request still running on a removed backend at drainTimeoutMs', async () => {
    await applyConfig({
      pools: { web: { algorithm: 'round_robin', drainTimeoutMs: 500, backends: [member(b[3]!)] }, other: { backends: [member(b[0]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = dps[0]!;
    const started = Date.now();
    const slow = fetch(`${dp.url}/slow?ms=5000`).then(
      async (r) => ({ status: r.status, ms: Date.now() - started }),
      (err: Error) => ({ status: 0, ms: Date.now() - started, err }),
    );
    await waitFor(() => b[3]!.active === 1, { message: 'the slow request to reach b4' });
    await applyConfig({
      pools: { web: { algorithm: 'round_robin', drainTimeoutMs: 500, backends: [member(b[0]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const result = await slow;
    expect(result.status).not.toBe(200);
    expect(result.ms).toBeLessThan(3_000);
  });
});

describe('self-registered backends', () => {
  it('joins the pool on a lease without a config version, and leaves when the keepalives stop', async () => {
    const version = await applyConfig({
      pools: { web: { algorithm: 'round_robin', backends: [member(b[0]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const reg = await api('PUT', `${cpUrl()}/v1/pools/web/backends/r4`, { address: b[3]!.address, ttlSeconds: 2 });
    expect(reg.status).toBe(200);
    expect(reg.body).toMatchObject({ version, committed: false, backend: { id: 'r4', address: b[3]!.address }, ttlSeconds: 2 });
    const dp = dps[0]!;
    await waitFor(async () => (await view(dp)).pools.web?.backends.some((x) => x.id === 'r4'), { message: 'r4 to reach the data plane' });
    expect(Object.keys(await distribution(`${dp.url}/`, 10)).sort()).toEqual(['b1', 'b4']);
    expect((await cpHealth('web')).backends.find((x) => x.id === 'r4')).toMatchObject({ registered: true, status: 'unknown' });
    // Keepalives hold it past its TTL.
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      const ka = await api('POST', `${cpUrl()}/v1/pools/web/backends/r4/keepalive`);
      expect(ka.status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect((await view(dp)).pools.web?.backends.some((x) => x.id === 'r4')).toBe(true);
    // No keepalive: gone after the TTL (etcd checks leases about every 500 ms).
    await waitFor(async () => !(await view(dp)).pools.web?.backends.some((x) => x.id === 'r4'), { timeoutMs: 8_000, message: 'r4 to expire' });
    expect((await api('POST', `${cpUrl()}/v1/pools/web/backends/r4/keepalive`)).status).toBe(404);
    expect((await api('GET', `${cpUrl()}/v1/config`)).body.version).toBe(version);
    expect((await api('GET', `${cpUrl()}/v1/versions`)).body.versions[0].version).toBe(version);
  });
});

describe('leader election', () => {
  it('never lets two replicas probe together, and hands probing over within 5 s when the leader dies', async () => {
    await applyConfig({
      pools: { web: { algorithm: 'round_robin', backends: [member(b[0]!), member(b[1]!), member(b[2]!)], healthCheck: CHECK } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const since = Date.now();
    await waitFor(() => b.slice(0, 3).every((x) => x.probes.filter((p) => p.at > since).length >= 5), { message: 'probes to flow' });
    const recent = b.slice(0, 3).flatMap((x) => x.probes.filter((p) => p.at > since));
    const replicas = [...new Set(recent.map((p) => p.replica))];
    expect(replicas).toHaveLength(1);
    const leaderName = replicas[0]!;
    const [leader, follower, followerName] = leaderName === 'cp-a' ? [cpA, cpB, 'cp-b'] : [cpB, cpA, 'cp-a'];

    await leader.kill();
    const killedAt = Date.now();
    await waitFor(() => b.slice(0, 3).every((x) => x.probes.some((p) => p.replica === followerName && p.at > killedAt)), {
      timeoutMs: 5_000,
      intervalMs: 25,
      message: `${followerName} to take over probing`,
    });
    const all = b.slice(0, 3).flatMap((x) => x.probes);
    const lastByOld = Math.max(...all.filter((p) => p.replica === leaderName).map((p) => p.at));
    const firstByNew = Math.min(...all.filter((p) => p.replica === followerName).map((p) => p.at));
    // Never together: every probe of the new leader comes after the old leader's last one.
    expect(firstByNew).toBeGreaterThan(lastByOld);
    expect(firstByNew - killedAt).toBeLessThan(5_000);

    // The new leader's results reach the data planes (both now on the surviving replica).
    b[0]!.healthStatus = 503;
    try {
      for (const dp of dps)
        await waitFor(async () => (await dpStatus(dp, 'web', 'b1')) === 'unhealthy', {
          timeoutMs: 5_000,
          message: `${dp.options.nodeId} to hear from the new leader`,
        });
    } finally {
      b[0]!.healthStatus = 200;
    }
    expect(follower.process.running).toBe(true);
  });
});

describe('data-plane shutdown', () => {
  it('on SIGTERM answers /readyz 503, finishes the request in flight, and exits 0', async () => {
    await applyConfig({
      pools: { web: { algorithm: 'round_robin', backends: [member(b[1]!)] } },
      routes: { web: { pools: [{ pool: 'web' }] } },
    });
    const dp = dps[1]!;
    const slow = fetch(`${dp.url}/slow?ms=1500`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await waitFor(() => b[1]!.active === 1, { message: 'the slow request to reach b2' });
    const exited = dp.process.stop('SIGTERM');
    await waitFor(async () => (await fetch(`${dp.adminUrl}/readyz`)).status === 503, { message: '/readyz to turn 503' });
    expect(await slow).toEqual({ status: 200, body: 'b2 slow 1500\n' });
    expect(await exited).toBe(0);
  });
});
