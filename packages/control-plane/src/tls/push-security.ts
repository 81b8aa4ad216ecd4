/**
 * Who may receive what on the gRPC stream. With mutual TLS (--grpc-tls-cert, --grpc-tls-key,
 * --grpc-client-ca) every node has proven who it is: its Hello's node id must be its certificate's
 * CN or one of its DNS names, so a node cannot pose as another, and it may receive private keys.
 * Without TLS nobody has proven anything: the stream carries config but never a key — unless the
 * control plane runs with --dev-plaintext-secrets and the node connects from a loopback address.
 */
import type * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

export interface PushSecurity {
  /** Why this stream's node must not be sent keys; undefined when it may. */
  withholdReason(call: grpc.ServerDuplexStream<unknown, unknown>): string | undefined;
  /** Why the node id in Hello is refused on this stream; undefined when it is accepted. */
  identityProblem(call: grpc.ServerDuplexStream<unknown, unknown>, nodeId: string): string | undefined;
}

/** The names a node certificate vouches for: its CN and its DNS subject alternative names. */
export function certificateIdentities(cert: PeerCertificate | undefined): string[] {
  if (cert === undefined || cert === null) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...(cn as string[]));
  for (const entry of (cert.subjectaltname ?? '').split(/,\s*/)) if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  return [...new Set(names)];
}

/** `127.0.0.1:5000`, `[::1]:5000`, `::ffff:127.0.0.1:5000` (grpc-js' getPeer()). */
export function isLoopbackPeer(peer: string): boolean {
  const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.slice(0, peer.lastIndexOf(':'));
  return host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}

export function pushSecurity(options: { mutualTls: boolean; devPlaintextSecrets: boolean }): PushSecurity {
  return {
    withholdReason(call) {
      if (options.mutualTls) return undefined;
      if (options.devPlaintextSecrets && isLoopbackPeer(call.getPeer())) return undefined;
      return options.devPlaintextSecrets
        ? `the control plane sends private keys over plaintext gRPC only to loopback nodes (--dev-plaintext-secrets), and ${call.getPeer()} is not one`
        : 'the control plane sends private keys only over mutual TLS: start it with --grpc-tls-cert, --grpc-tls-key and --grpc-client-ca, and this node with --tls-ca, --tls-cert and --tls-key';
    },
    identityProblem(call, nodeId) {
      if (!options.mutualTls) return undefined;
      const names = certificateIdentities(call.getAuthContext().sslPeerCertificate);
      if (names.some((n) => n === nodeId || n.toLowerCase() === nodeId.toLowerCase())) return undefined;
      return `node id "${nodeId}" is not in the node's client certificate (it names ${names.length === 0 ? 'nothing' : names.join(', ')}): a node may only use the id its certificate gives it`;
    },
  };
}
