// Applies deploy/docker/demo-config.json once: `If-Match: "0"` commits only when nothing was ever
// written, so running it again (or after an operator changed things) leaves the config alone.
// Usage: node deploy/docker/apply-demo-config.mjs [CONTROL_PLANE_URL]   (default http://127.0.0.1:8080)
import { readFileSync } from 'node:fs';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const config = readFileSync(new URL('./demo-config.json', import.meta.url), 'utf8');

for (let attempt = 1; ; attempt++) {
  try {
    const res = await fetch(`${base}/v1/config`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        'if-match': '"0"',
        'x-change-message': 'demo config from deploy/docker/apply-demo-config.mjs',
        'x-change-author': 'compose',
      },
      body: config,
    });
    if (res.status === 412) {
      console.log('a config is already there; leaving it as it is');
      process.exit(0);
    }
    if (res.ok) {
      console.log(`demo config applied as version ${(await res.json()).version}`);
      process.exit(0);
    }
    if (res.status < 500) {
      console.error(`the control plane refused the demo config: ${res.status} ${await res.text()}`);
      process.exit(1);
    }
    throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    if (attempt >= 30) {
      console.error(`cannot reach the control plane at ${base}: ${err.message}`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
