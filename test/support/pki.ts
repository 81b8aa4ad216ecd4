/**
 * Throwaway certificates for tests, made with the `openssl` CLI (node:crypto cannot sign X.509
 * certificates): a root CA, an intermediate, and leaf certificates with the names, key types and
 * validity a test asks for. Everything lives in one temporary directory per process; certificates
 * are made once per distinct request.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyType = 'ec' | 'rsa';

export interface IssueOptions {
  /** Subject CN. */
  cn: string;
  /** subjectAltName entries, `DNS:a.example` or `IP:127.0.0.1`; default `DNS:<cn>`. */
  sans?: string[];
  /** Default ec (P-256). */
  keyType?: KeyType;
  /** clientAuth instead of serverAuth in extendedKeyUsage (both when 'both'). */
  usage?: 'server' | 'client' | 'both';
  /** Expired a day ago (valid from ten days ago). */
  expired?: boolean;
  /** Issued by the intermediate CA (the chain then holds leaf + intermediate). */
  viaIntermediate?: boolean;
  /** A CA other than the shared one signs it: for "does not verify" tests. */
  otherCa?: boolean;
  /** Reuse this certificate's key (a renewal that keeps its key) instead of making one. */
  renewalOf?: Issued;
}

export interface Issued {
  /** PEM: the leaf, then the intermediate when there is one. */
  chain: string;
  /** PEM (PKCS#8) private key. */
  key: string;
  chainFile: string;
  keyFile: string;
  /** The root that issued it (PEM file path). */
  caFile: string;
  ca: string;
}

/** `caName` picks the `openssl ca` database (CA_CONF reads it from the environment; every CA keeps its own). */
function run(args: string[], cwd: string, caName = 'root'): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CA_NAME: caName } });
}

function newKey(dir: string, file: string, type: KeyType): void {
  if (type === 'ec') run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], dir);
  else run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file], dir);
}

const CA_CONF = `[ca]
default_ca = ca_default
[ca_default]
dir = .
database = $dir/index-$ENV::CA_NAME.txt
serial = $dir/serial-$ENV::CA_NAME
new_certs_dir = $dir/issued
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
[policy_any]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
`;

class Pki {
  readonly dir = mkdtempSync(join(tmpdir(), 'lb-pki-'));
  private readonly issued = new Map<string, Issued>();
  private serial = 0;

  constructor() {
    writeFileSync(join(this.dir, 'ca.conf'), CA_CONF);
    mkdirSync(join(this.dir, 'issued'));
    this.selfSigned('root', 'lb test root CA');
    this.selfSigned('other-root', 'some other CA');
    writeFileSync(join(this.dir, 'index-intermediate.txt'), '');
    writeFileSync(join(this.dir, 'serial-intermediate'), '2000\n');
    // The intermediate, signed by the root.
    newKey(this.dir, 'intermediate.key', 'ec');
    run(['req', '-new', '-key', 'intermediate.key', '-subj', '/CN=lb test intermediate CA', '-out', 'intermediate.csr'], this.dir);
    this.sign('root', 'intermediate.csr', 'intermediate.pem', 'v3_ca');
  }

  private selfSigned(name: string, cn: string): void {
    writeFileSync(join(this.dir, `index-${name}.txt`), '');
    writeFileSync(join(this.dir, `serial-${name}`), '1000\n');
    newKey(this.dir, `${name}.key`, 'ec');
    run(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}.key`,
        '-subj',
        `/CN=${cn}`,
        '-days',
        '3650',
        '-config',
        'ca.conf',
        '-extensions',
        'v3_ca',
        '-out',
        `${name}.pem`,
      ],
      this.dir,
      name,
    );
  }

  /** Signs a CSR with CA `ca` (its key `<ca>.key`, certificate `<ca>.pem`) using `openssl ca`, which can back-date. */
  private sign(ca: string, csr: string, out: string, extensions: string, extFile?: string, expired = false): void {
    const dates = expired ? ['-startdate', stamp(-10), '-enddate', stamp(-1)] : ['-startdate', stamp(-1), '-enddate', stamp(825)];
    run(
      [
        'ca',
        '-batch',
        '-config',
        'ca.conf',
        '-notext',
        '-cert',
        `${ca}.pem`,
        '-keyfile',
        `${ca}.key`,
        '-in',
        csr,
        '-out',
        out,
        ...dates,
        ...(extFile !== undefined ? ['-extfile', extFile] : []),
        '-extensions',
        extensions,
      ],
      this.dir,
      ca,
    );
  }

  get rootFile(): string {
    return join(this.dir, 'root.pem');
  }

  get root(): string {
    return readFileSync(this.rootFile, 'utf8');
  }

  issue(options: IssueOptions): Issued {
    const key = JSON.stringify(options);
    const cached = this.issued.get(key);
    if (cached !== undefined) return cached;
    const id = `leaf-${++this.serial}`;
    const type = options.keyType ?? 'ec';
    if (options.renewalOf !== undefined) writeFileSync(join(this.dir, `${id}.key`), options.renewalOf.key, { mode: 0o600 });
    else newKey(this.dir, `${id}.key`, type);
    const sans = options.sans ?? [`DNS:${options.cn}`];
    const usage = options.usage ?? 'server';
    const eku = usage === 'both' ? 'serverAuth,clientAuth' : usage === 'client' ? 'clientAuth' : 'serverAuth';
    const keyUsage = type === 'rsa' ? 'digitalSignature,keyEncipherment' : 'digitalSignature';
    writeFileSync(
      join(this.dir, `${id}.ext`),
      `[leaf]\nbasicConstraints = CA:false\nkeyUsage = critical,${keyUsage}\nextendedKeyUsage = ${eku}\nsubjectAltName = ${sans.join(',')}\n`,
    );
    run(['req', '-new', '-key', `${id}.key`, '-subj', `/CN=${options.cn}`, '-out', `${id}.csr`], this.dir);
    const ca = options.otherCa ? 'other-root' : options.viaIntermediate ? 'intermediate' : 'root';
    this.sign(ca, `${id}.csr`, `${id}.pem`, 'leaf', `${id}.ext`, options.expired === true);
    let chain = readFileSync(join(this.dir, `${id}.pem`), 'utf8');
    if (options.viaIntermediate) chain += readFileSync(join(this.dir, 'intermediate.pem'), 'utf8');
    writeFileSync(join(this.dir, `${id}-chain.pem`), chain);
    const rootFile = join(this.dir, `${options.otherCa ? 'other-root' : 'root'}.pem`);
    const issued: Issued = {
      chain,
      key: readFileSync(join(this.dir, `${id}.key`), 'utf8'),
      chainFile: join(this.dir, `${id}-chain.pem`),
      keyFile: join(this.dir, `${id}.key`),
      caFile: rootFile,
      ca: readFileSync(rootFile, 'utf8'),
    };
    this.issued.set(key, issued);
    return issued;
  }
}

/** `openssl ca` dates: YYYYMMDDHHMMSSZ, `days` from now. */
function stamp(days: number): string {
  const d = new Date(Date.now() + days * 86_400_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
}

let shared: Pki | undefined;

/** The process's test PKI (made on first use, a few hundred ms). */
export function testPki(): Pki {
  shared ??= new Pki();
  return shared;
}
