// Throwaway TLS material for the local stack (deploy/local-stack.mjs), made once in .stack/tls/
// with the openssl CLI (node:crypto cannot sign certificates): a CA, the control plane's gRPC
// certificate, one client certificate per data plane (its CN is the node id: the control plane
// checks it), the demo site's certificate, and the secrets key that encrypts private keys in
// etcd. Nothing here is fit for anything but a laptop.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** An ECDSA P-256 key and a certificate for `cn` with `sans`, signed by the stack's CA. */
function issue(dir, name, cn, sans, usage) {
  if (existsSync(join(dir, `${name}.pem`))) return;
  openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
  openssl(dir, 'req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
  writeFileSync(
    join(dir, `${name}.ext`),
    `basicConstraints = CA:false\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = ${usage}\nsubjectAltName = ${sans.join(',')}\n`,
  );
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '90',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  chmodSync(join(dir, `${name}.key`), 0o600);
}

/**
 * Makes what is missing in `dir` and returns the paths. `nodes` are the data planes' ids.
 */
export function localTls(dir, nodes) {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.pem'))) {
    openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key');
    openssl(
      dir,
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=lb local stack CA',
      '-days',
      '90',
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.pem',
    );
    chmodSync(join(dir, 'ca.key'), 0o600);
  }
  issue(dir, 'control-plane', 'lb-control-plane', ['DNS:localhost', 'IP:127.0.0.1'], 'serverAuth');
  for (const node of nodes) issue(dir, node, node, [`DNS:${node}`], 'clientAuth');
  issue(dir, 'demo', 'demo.localhost', ['DNS:localhost', 'DNS:demo.localhost', 'DNS:*.demo.localhost'], 'serverAuth');
  const secrets = join(dir, 'secrets.key');
  if (!existsSync(secrets)) writeFileSync(secrets, `${execFileSync('openssl', ['rand', '-hex', '32']).toString().trim()}\n`, { mode: 0o600 });
  return {
    ca: join(dir, 'ca.pem'),
    controlPlane: { cert: join(dir, 'control-plane.pem'), key: join(dir, 'control-plane.key') },
    node: (id) => ({ cert: join(dir, `${id}.pem`), key: join(dir, `${id}.key`) }),
    demo: { cert: readFileSync(join(dir, 'demo.pem'), 'utf8'), key: readFileSync(join(dir, 'demo.key'), 'utf8') },
    secretsKey: secrets,
  };
}
