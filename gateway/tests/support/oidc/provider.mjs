// The OpenID provider of the gateway's SSO tests: the certified `oidc-provider` package, configured
// from a JSON file (argument 1) written by gateway/tests/support/oidc.rs:
//   { "port": 0, "clients": [...], "accounts": { "alice": { claims } }, "key_id": "key-1",
//     "id_token_ttl": 3600, "clock_behind": 0, "refresh_tokens": false, "userinfo_only": [],
//     "faults": { "tamper_nonce": true, "publish_other_keys": true,
//                 "refresh_without_id_token": true } }
// It listens on 127.0.0.1 (port 0: any free port) and prints `listening http://127.0.0.1:PORT` once
// ready. Sign-in uses the package's development interactions (a login form taking any password
// for a known account); consent is granted automatically for the configured clients. PKCE is
// required. With `key_id`, a fresh RSA signing key is generated at each start (a restart rotates
// the keys). The fault switches make this real provider misbehave in ways the gateway must catch:
// `tamper_nonce` asks the provider for another nonce than the client sent (the ID token carries
// it), `publish_other_keys` serves a JWKS holding a key that signs nothing,
// `refresh_without_id_token` leaves the ID token out of refresh responses (as some providers do).
// With `refresh_tokens`, every code grant also issues a refresh token (rotated at each use; a
// rotated one used again revokes the grant), as Keycloak does, without `offline_access` and its
// consent prompt. Claims named in `userinfo_only` are left out of ID tokens (userinfo only).
// Test controls, outside the provider's routes: `POST /test/revoke/{account}` destroys the
// account's grants (their refresh tokens then get `invalid_grant`); `POST /test/account/{account}`
// replaces the account's claims (a JSON body); `GET /test/stats` counts the successful refresh
// grants; `GET /test/tokens` lists every token the token endpoint has issued.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const faults = config.faults ?? {};
if (config.clock_behind) {
  const realNow = Date.now;
  Date.now = () => realNow() - config.clock_behind * 1000;
}

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

const jwks = config.key_id ? { keys: [await signingKey(config.key_id)] } : undefined;
let otherKeys;
if (faults.publish_other_keys) {
  const { n, e, kty } = await signingKey('other');
  otherKeys = { keys: [{ kty, n, e, kid: config.key_id ?? 'other', alg: 'RS256', use: 'sig' }] };
}
const server = http.createServer();
await new Promise((resolve) => { server.listen(config.port ?? 0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const accounts = config.accounts ?? {};
const userinfoOnly = new Set(config.userinfo_only ?? []);
const grants = new Map();
let refreshes = 0;
// Every token the token endpoint has answered with, for the tests that look for them at rest.
const issued = [];

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks,
  cookies: { keys: ['authgate-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups', 'realm_access'],
  },
  // The scope claims go into the ID token too (not only to userinfo), as Keycloak and Entra do.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true, methods: ['S256'] },
  ttl: {
    IdToken: config.id_token_ttl ?? 3600,
    AccessToken: 3600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  ...(config.refresh_tokens ? {
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
  } : {}),
  async findAccount(_ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims(use) {
        const out = { sub: id, ...claims };
        if (use === 'id_token') for (const name of userinfoOnly) delete out[name];
        return out;
      },
    };
  },
  // No consent screen for the test clients: a grant covering what was asked.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups offline_access');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'preferred_username', 'groups', 'realm_access']);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (_ctx, err) => { console.error('server_error', err); });
provider.on('grant.saved', (grant) => {
  if (!grants.has(grant.accountId)) grants.set(grant.accountId, new Set());
  grants.get(grant.accountId).add(grant.jti);
});
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type === 'refresh_token') refreshes += 1;
});
provider.use(async (ctx, next) => {
  const revoke = ctx.path.match(/^\/test\/revoke\/([^/]+)$/);
  if (revoke && ctx.method === 'POST') {
    let destroyed = 0;
    for (const id of grants.get(revoke[1]) ?? []) {
      const grant = await provider.Grant.find(id);
      if (grant) { await grant.destroy(); destroyed += 1; }
    }
    grants.delete(revoke[1]);
    ctx.body = { destroyed };
    return;
  }
  const account = ctx.path.match(/^\/test\/account\/([^/]+)$/);
  if (account && ctx.method === 'POST') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    accounts[account[1]] = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path === '/test/stats') {
    ctx.body = { refreshes };
    return;
  }
  if (faults.tamper_nonce && ctx.path === '/auth' && ctx.query.nonce) {
    ctx.query = { ...ctx.query, nonce: `${ctx.query.nonce}-tampered` };
  }
  if (otherKeys && ctx.path === '/jwks') {
    ctx.type = 'application/jwk-set+json';
    ctx.body = otherKeys;
    return;
  }
  if (ctx.path === '/test/tokens') {
    ctx.body = { tokens: issued };
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.body && typeof ctx.body === 'object') {
    for (const name of ['refresh_token', 'id_token', 'access_token']) {
      if (ctx.body[name]) issued.push(ctx.body[name]);
    }
    if (faults.refresh_without_id_token && ctx.oidc?.params?.grant_type === 'refresh_token') {
      delete ctx.body.id_token;
    }
  }
});
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
process.on('SIGTERM', () => { server.close(); process.exit(0); });
