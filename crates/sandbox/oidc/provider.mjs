// The real OpenID provider hubwright's tests run: oidc-provider with Dynamic
// Client Registration (RFC 7591) and its management protocol (RFC 7592),
// development logins, an in-memory store, and test-only routes under /__test.
//
//   node provider.mjs [--port N] [--iat TOKEN] [--key-file PATH]
//
// --port (or HUBWRIGHT_OIDC_PORT): port on 127.0.0.1, 0 (default) picks one.
// --iat (or HUBWRIGHT_OIDC_IAT): when set, registration requires this initial
//   access token as `Authorization: Bearer TOKEN`.
// --key-file: the RSA signing key (a private JWK), made there on first use;
//   without it a key is made for this start alone.
//
// When listening it prints exactly one JSON line on stdout,
// {"issuer":"http://127.0.0.1:PORT","port":PORT}; everything else (one JSON line
// per request, oidc-provider's warnings) goes to stderr.
//
// Test routes, answered before the provider sees the request:
//   GET    /__test/clients   JSON array of registered client ids
//   GET    /__test/requests  JSON array of {method, path, status} seen so far
//   GET    /__test/faults    JSON array of the fault rules not yet used up
//   POST   /__test/faults    add a fault rule (JSON, below); 204
//   DELETE /__test/faults    remove every fault rule; 204
// A fault rule: {"path_prefix": "/reg", "method": "POST" (optional, any when
// absent), "times": 1, "delay_ms": 0, "status": 503, "body": {...}, "drop": false}.
// A matching request waits delay_ms, then is dropped (socket destroyed) if drop,
// answered with status/body if status is set, or else handed to the provider
// (a pure delay). Rules match in the order added; each retires after `times`.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

import { MemoryAdapter, clientIds } from './adapter.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    iat: { type: 'string' },
    groups: { type: 'string' },
    'key-file': { type: 'string' },
  },
});
// Group memberships by user name, for the `groups` claim: {"dana": ["physics"]}.
const groups = JSON.parse(args.groups ?? '{}');
const port = Number(args.port ?? process.env.HUBWRIGHT_OIDC_PORT ?? 0);
const initialAccessToken = args.iat ?? process.env.HUBWRIGHT_OIDC_IAT ?? '';

const faults = [];
const requests = [];

function log(record) {
  process.stderr.write(`${JSON.stringify(record)}\n`);
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function testRoutes(ctx) {
  const route = `${ctx.method} ${ctx.path}`;
  switch (route) {
    case 'GET /__test/clients':
      ctx.body = clientIds();
      return;
    case 'GET /__test/requests':
      ctx.body = requests;
      return;
    case 'GET /__test/faults':
      ctx.body = faults;
      return;
    case 'POST /__test/faults': {
      const rule = await readJson(ctx.req);
      if (typeof rule.path_prefix !== 'string') {
        ctx.status = 400;
        ctx.body = { error: 'path_prefix (a string) is required' };
        return;
      }
      faults.push({ times: 1, delay_ms: 0, ...rule });
      ctx.status = 204;
      return;
    }
    case 'DELETE /__test/faults':
      faults.length = 0;
      ctx.status = 204;
      return;
    default:
      ctx.status = 404;
      ctx.body = { error: `no test route ${route}` };
  }
}

function takeFault(ctx) {
  const index = faults.findIndex((rule) => ctx.path.startsWith(rule.path_prefix)
    && (!rule.method || rule.method.toUpperCase() === ctx.method));
  if (index < 0) return undefined;
  const rule = faults[index];
  rule.times -= 1;
  if (rule.times <= 0) faults.splice(index, 1);
  return rule;
}

async function readJsonBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  try { return text ? JSON.parse(text) : undefined; } catch { return undefined; }
}

async function testMiddleware(ctx, next) {
  if (ctx.path.startsWith('/__test/')) {
    await testRoutes(ctx);
    return;
  }
  const started = Date.now();
  const fault = takeFault(ctx);
  try {
    if (fault?.delay_ms && !fault.drop && !fault.status) {
      // A slow provider has the whole request before it stalls: a client that
      // gives up (or dies) meanwhile still gets its registration made.
      ctx.request.body = await readJsonBody(ctx.req);
    }
    if (fault?.delay_ms) await new Promise((resolve) => { setTimeout(resolve, fault.delay_ms); });
    if (fault?.drop) {
      ctx.req.socket.destroy();
      ctx.respond = false;
    } else if (fault?.status) {
      ctx.status = fault.status;
      ctx.body = fault.body ?? '';
    } else {
      await next();
    }
  } finally {
    const record = { method: ctx.method, path: ctx.path, status: fault?.drop ? 0 : ctx.status };
    requests.push(record);
    log({ ...record, ms: Date.now() - started, fault: fault ? true : undefined });
  }
}

// Our own signing and cookie keys, so the provider never falls back to its
// shared development keys. Making an RSA key costs about a quarter second of
// CPU, and the tests start a provider dozens of times: with --key-file the key
// is made once and kept (0600; written aside and renamed, so a provider
// starting meanwhile reads a whole key or makes its own).
function rsaSigningKey() {
  const make = () => generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ format: 'jwk' });
  const file = args['key-file'];
  if (!file) return make();
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    const jwk = make();
    const aside = `${file}.${process.pid}`;
    writeFileSync(aside, JSON.stringify(jwk), { mode: 0o600 });
    renameSync(aside, file);
    return jwk;
  }
}
const signingKey = { ...rsaSigningKey(), use: 'sig', alg: 'RS256' };

const configuration = {
  adapter: MemoryAdapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Put the granted scopes' claims into ID tokens too, as Keycloak and most
  // providers do, so a portal can pass the ID token to an API that needs the
  // user's name and groups.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    registration: {
      enabled: true,
      initialAccessToken: initialAccessToken || false,
    },
    registrationManagement: {
      enabled: true,
      // Keep the stored registration_access_token valid across updates.
      rotateRegistrationAccessToken: false,
    },
  },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    // As Dex and Okta do it: the memberships come with their own scope.
    groups: ['groups'],
  },
  // Development logins accept any name; that name is the subject.
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, email: `${id}@example.org`, email_verified: true, name: id, preferred_username: id,
          groups: groups[id] ?? [],
        };
      },
    };
  },
};

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const issuer = `http://127.0.0.1:${bound}`;
  const provider = new Provider(issuer, configuration);
  provider.use(testMiddleware);
  provider.on('server_error', (_ctx, err) => log({ server_error: String(err?.stack ?? err) }));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port: bound })}\n`);
});
server.on('error', (err) => {
  log({ listen_error: String(err) });
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
