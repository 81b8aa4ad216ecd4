/**
 * The planes' mutual TLS for tests, as issue 11 runs them: the control plane with
 * --grpc-tls-cert/--grpc-tls-key/--grpc-client-ca and a --secrets-key-file, data planes with
 * --tls-ca/--tls-cert/--tls-key (each certificate naming its node id). Everything is made in
 * temporary files by test/support/pki.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPki, type Issued } from './pki.js';
import { Stack, type StackOptions } from './stack.js';

/** A 32-byte secrets key in a 0600 file, as --secrets-key-file wants it. */
export function secretsKeyFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'lb-secrets-')), 'secrets.key');
  writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return path;
}

/** The control plane's gRPC server certificate: valid for 127.0.0.1 and localhost. */
export function controlPlaneCertificate(): Issued {
  return testPki().issue({ cn: 'lb-control-plane', sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'server' });
}

/** A data plane's client certificate, naming `nodeId`. */
export function nodeCertificate(nodeId: string, options: { otherCa?: boolean } = {}): Issued {
  return testPki().issue({ cn: nodeId, sans: [`DNS:${nodeId}`], usage: 'client', ...options });
}

/** --tls-ca/--tls-cert/--tls-key for a data plane with `certificate`. */
export function nodeTlsArgs(certificate: Issued): string[] {
  return ['--tls-ca', testPki().rootFile, '--tls-cert', certificate.chainFile, '--tls-key', certificate.keyFile];
}

/** The control plane's mutual-TLS and secrets flags. */
export function controlPlaneTlsArgs(keyFile: string = secretsKeyFile()): string[] {
  const cp = controlPlaneCertificate();
  return ['--secrets-key-file', keyFile, '--grpc-tls-cert', cp.chainFile, '--grpc-tls-key', cp.keyFile, '--grpc-client-ca', testPki().rootFile];
}

/**
 * A stack (stack.ts) whose planes speak mutual TLS: the control plane with its certificates and a
 * secrets key, each data plane with a certificate naming it and its listeners on bindAddressOf(i).
 */
export function startTlsStack(options: StackOptions = {}): Promise<Stack> {
  return Stack.start({
    ...options,
    controlPlaneArgs: [...controlPlaneTlsArgs(), ...(options.controlPlaneArgs ?? [])],
    nodeArgs: (i) => [...nodeTlsArgs(nodeCertificate(`dp-${i + 1}`)), '--bind-address', bindAddressOf(i), ...(options.nodeArgs?.(i) ?? [])],
  });
}

/**
 * Where data plane `i` (0-based) binds the config's listeners: nodes share one host here, so each
 * gets its own loopback address (127.0.0.1, 127.0.0.2, …) and every node can open the same port.
 */
export function bindAddressOf(i: number): string {
  return `127.0.0.${i + 1}`;
}
