/**
 * Pushes encoded once, sent to many: a view's full snapshot once, its delta from each base view
 * once, each health update once — never once per node. An encoded push is the protobuf bytes of a
 * ControlMessage, which the stream server writes as they are (passThroughResponses). Its nonce is
 * shared by every stream it goes to; each stream remembers the nonces it sent.
 *
 * Encodings hang off the objects they encode (WeakMaps), so they go when the view or update goes.
 *
 * Every config push carries the key material its node may have (PushSecrets): all of the view's,
 * or none with the reason it is withheld. Nodes that may have the same secrets share an encoding.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { loadDiscovery, resourceKey, type ControlMessage, type Resource, type ResourceRef, type TlsSecrets } from '@lb/shared';
import type { HealthDelta } from './health-source.js';
import type { PushView } from './push-view.js';

export interface EncodedPush {
  readonly nonce: string;
  /** The config version or health revision the push carries. */
  readonly version: number;
  /** Config pushes: a delta (it needs the base the node runs) or a full snapshot. */
  readonly delta: boolean;
  readonly bytes: Buffer;
}

/** What one stream's node gets of a view's secrets, and a key telling the variants apart. */
export interface PushSecrets {
  readonly value: TlsSecrets | null;
  /** '' for none; the same key for the same value within one view. */
  readonly key: string;
}

export const NO_SECRETS: PushSecrets = { value: null, key: '' };

/** The service definition with a response serializer that writes pre-encoded bytes as they are. */
export function passThroughResponses(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const serialize = method.responseSerialize as (value: unknown) => Buffer;
    out[name] = { ...method, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value)) };
  }
  return out as grpc.ServiceDefinition;
}

function encode(message: ControlMessage): Buffer {
  const serialize = loadDiscovery().service.Stream!.responseSerialize as (value: ControlMessage) => Buffer;
  return serialize(message);
}

/** The whole config document from the resources' texts, without stringifying anything again. */
export function configJsonOf(view: PushView): string {
  const bySection = new Map<string, string[]>(view.encoded.sections.map((s) => [s, []]));
  for (const r of view.encoded.resources.values()) {
    const members = bySection.get(r.section) ?? [];
    if (members.length === 0) bySection.set(r.section, members);
    members.push(`${JSON.stringify(r.name)}:${r.json}`);
  }
  return `{${[...bySection].map(([section, members]) => `${JSON.stringify(section)}:{${members.join(',')}}`).join(',')}}`;
}

export class PushEncoder {
  /** Per view: by secrets key. */
  private readonly fulls = new WeakMap<PushView, Map<string, EncodedPush>>();
  /** Per view: by base view id and secrets key. */
  private readonly deltas = new WeakMap<PushView, Map<string, EncodedPush>>();
  private readonly healthUpdates = new WeakMap<HealthDelta, EncodedPush>();
  /** Full health is asked for on every Hello; one encoding per revision serves a reconnect storm. */
  private fullHealth: EncodedPush | undefined;

  full(view: PushView, secrets: PushSecrets = NO_SECRETS): EncodedPush {
    let bySecrets = this.fulls.get(view);
    const known = bySecrets?.get(secrets.key);
    if (known !== undefined) return known;
    const nonce = randomUUID();
    const bytes = encode({
      config: {
        version: view.version,
        nonce,
        configJson: configJsonOf(view),
        baseVersion: 0,
        upserted: [],
        removed: [],
        historyId: view.historyId,
        digest: view.digest,
        secrets: secrets.value,
      },
    });
    const encoded = { nonce, version: view.version, delta: false, bytes };
    if (bySecrets === undefined) {
      bySecrets = new Map();
      this.fulls.set(view, bySecrets);
    }
    bySecrets.set(secrets.key, encoded);
    return encoded;
  }

  /** The changes from `base` (a view of the same history the node runs) to `view`. */
  delta(base: PushView, view: PushView, secrets: PushSecrets = NO_SECRETS): EncodedPush {
    let byBase = this.deltas.get(view);
    const cacheKey = `${base.id}\u0000${secrets.key}`;
    const known = byBase?.get(cacheKey);
    if (known !== undefined) return known;
    const upserted: Resource[] = [];
    const removed: ResourceRef[] = [];
    for (const r of view.encoded.resources.values()) {
      const before = base.encoded.resources.get(resourceKey(r.section, r.name));
      if (before?.hash !== r.hash) upserted.push({ type: r.section, name: r.name, json: r.json });
    }
    for (const [key, r] of base.encoded.resources) if (!view.encoded.resources.has(key)) removed.push({ type: r.section, name: r.name });
    const nonce = randomUUID();
    const bytes = encode({
      config: {
        version: view.version,
        nonce,
        configJson: '',
        baseVersion: base.version,
        upserted,
        removed,
        historyId: view.historyId,
        digest: view.digest,
        secrets: secrets.value,
      },
    });
    const encoded = { nonce, version: view.version, delta: true, bytes };
    if (byBase === undefined) {
      byBase = new Map();
      this.deltas.set(view, byBase);
    }
    byBase.set(cacheKey, encoded);
    return encoded;
  }

  health(update: HealthDelta): EncodedPush {
    if (update.full && this.fullHealth?.version === update.revision) return this.fullHealth;
    const known = this.healthUpdates.get(update);
    if (known !== undefined) return known;
    const nonce = randomUUID();
    const bytes = encode({ health: { revision: update.revision, nonce, full: update.full, backends: update.backends } });
    const encoded = { nonce, version: update.revision, delta: !update.full, bytes };
    if (update.full) this.fullHealth = encoded;
    else this.healthUpdates.set(update, encoded);
    return encoded;
  }
}
