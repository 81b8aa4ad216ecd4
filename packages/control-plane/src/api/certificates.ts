/**
 * GET /v1/certificates and GET/PUT/DELETE /v1/certificates/{name}. A certificate resource is part
 * of the config (versioned, rolled back with it); its private key is not: PUT checks it against
 * the certificate and stores it sealed beside the versions, under the public key's id. Every
 * answer describes certificates by their metadata — no endpoint returns a key, sealed or not.
 */
import { X509Certificate } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { publicKeyId, validateCertificateBody, type CertificateResource, type Config } from '@lb/shared';
import { ApiError } from '../errors.js';
import { checkPrivateKey, type CheckedKey } from '../secrets/key-vault.js';
import { certificateUsers, describeCertificate, type CertificateDetails } from '../tls/certificate-details.js';
import type { ApiDeps } from './deps.js';
import { docs, writeAnswer } from './docs-schemas.js';
import { withKeys } from './key-upload.js';
import { noQuerySchema, paramsSchema, writeQuerySchema } from './schemas.js';
import { sendWriteResult, setVersionTag, writeRequestOf } from './write-request.js';

interface CertificateParams {
  name: string;
}

function certificateNotFound(name: string): ApiError {
  return new ApiError('LB_CP_NOT_FOUND', `certificate "${name}" does not exist`);
}

function resourceOf(config: Config, name: string): CertificateResource {
  const resource = config.certificates?.[name];
  if (resource === undefined || !Object.hasOwn(config.certificates!, name)) throw certificateNotFound(name);
  return resource;
}

function publicKeyIdOf(resource: CertificateResource): string {
  return publicKeyId(new X509Certificate(resource.certificate).publicKey);
}

export const certificateRoutes: FastifyPluginAsync<ApiDeps> = async (app, deps) => {
  const params = paramsSchema('name');
  const tags = ['certificates'];

  /** Metadata of every certificate of `config`, with whether its key is stored. */
  async function describeAll(config: Config): Promise<CertificateDetails[]> {
    const entries = Object.entries(config.certificates ?? {});
    const ids = entries.map(([, resource]) => publicKeyIdOf(resource));
    const stored = await deps.tls.vault.has(ids);
    const now = Date.now();
    return entries.map(([name, resource], i) => describeCertificate(name, resource, config, stored.has(ids[i]!), { now, warnDays: deps.tls.warnDays }));
  }

  app.get(
    '/v1/certificates',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.certificates } } },
      schema: { summary: 'Every certificate: metadata, expiry warnings, never a key', tags, querystring: noQuerySchema },
    },
    async (_request, reply) => {
      const current = await deps.store.current();
      const certificates = await describeAll(current.config);
      setVersionTag(reply, current.version);
      return {
        version: current.version,
        warnDays: deps.tls.warnDays,
        certificates,
        warnings: certificates.filter((c) => c.warning !== undefined).map((c) => `certificate "${c.name}" ${c.warning}`),
      };
    },
  );

  app.get<{ Params: CertificateParams }>(
    '/v1/certificates/:name',
    {
      config: { access: 'viewer', docs: { response: { 200: docs.certificateAnswer } } },
      schema: { summary: "One certificate's metadata", tags, params, querystring: noQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const current = await deps.store.current();
      const resource = resourceOf(current.config, name);
      const stored = await deps.tls.vault.has([publicKeyIdOf(resource)]);
      setVersionTag(reply, current.version);
      return {
        version: current.version,
        name,
        certificate: describeCertificate(name, resource, current.config, stored.size > 0, { now: Date.now(), warnDays: deps.tls.warnDays }),
      };
    },
  );

  app.put<{ Params: CertificateParams }>(
    '/v1/certificates/:name',
    {
      config: { access: 'operator', docs: { ...docs.certificate, response: { 200: writeAnswer } } },
      schema: { summary: 'Create or replace a certificate (and store its private key)', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const write = writeRequestOf(request, `PUT /v1/certificates/${name}`);
      const body = validateCertificateBody(request.body);
      if (!body.ok) throw new ApiError('LB_CP_VALIDATION', 'the certificate is invalid; nothing was changed', body.errors);
      const { resource, privateKey } = body.value;
      const keys: CheckedKey[] = [];
      if (privateKey !== undefined) {
        const checked = checkPrivateKey(privateKey, new X509Certificate(resource.certificate));
        if (!checked.ok)
          throw new ApiError('LB_CP_VALIDATION', 'the private key is invalid; nothing was changed', [{ field: 'privateKey', message: checked.message }]);
        keys.push(checked.key);
      }
      const result = await deps.writer.write(await withKeys(deps, write, keys), (config) => {
        config.certificates = { ...config.certificates, [name]: resource };
        return config;
      });
      const hasKey = keys.length > 0 || (await deps.tls.vault.has([publicKeyIdOf(resource)])).size > 0;
      const details = describeCertificate(name, resource, result.config, hasKey, { now: Date.now(), warnDays: deps.tls.warnDays });
      return sendWriteResult(reply, result, { name, certificate: details });
    },
  );

  app.delete<{ Params: CertificateParams }>(
    '/v1/certificates/:name',
    {
      config: { access: 'operator', docs: { response: { 200: writeAnswer } } },
      schema: { summary: 'Delete a certificate nothing uses', tags, params, querystring: writeQuerySchema },
    },
    async (request, reply) => {
      const { name } = request.params;
      const write = writeRequestOf(request, `DELETE /v1/certificates/${name}`);
      const result = await deps.writer.write(write, (config) => {
        resourceOf(config, name);
        const users = certificateUsers(config, name);
        if (users.length > 0) {
          throw new ApiError(
            'LB_CP_CERTIFICATE_IN_USE',
            `certificate "${name}" is used by ${users.join(', ')}; change those first`,
            users.map((field) => ({ field, message: `names certificate "${name}"` })),
            { usedBy: users },
          );
        }
        const { [name]: _gone, ...rest } = config.certificates!;
        if (Object.keys(rest).length === 0) delete config.certificates;
        else config.certificates = rest;
        return config;
      });
      return sendWriteResult(reply, result, { name });
    },
  );
};
