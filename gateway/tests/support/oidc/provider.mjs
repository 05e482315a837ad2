// The OpenID provider of the gateway's SSO tests: the certified `oidc-provider` package, configured
// from a JSON file (argument 1) written by gateway/tests/support/oidc.rs:
//   { "port": 0, "clients": [...], "accounts": { "alice": { claims } }, "key_id": "key-1",
//     "id_token_ttl": 3600, "clock_behind": 0,
//     "faults": { "tamper_nonce": true, "publish_other_keys": true } }
// It listens on 127.0.0.1 (port 0: any free port) and prints `listening http://127.0.0.1:PORT` once
// ready. Sign-in uses the package's development interactions (a login form taking any password
// for a known account); consent is granted automatically for the configured clients. PKCE is
// required. With `key_id`, a fresh RSA signing key is generated at each start (a restart rotates
// the keys). The fault switches make this real provider misbehave in ways the gateway must catch:
// `tamper_nonce` asks the provider for another nonce than the client sent (the ID token carries
// it), `publish_other_keys` serves a JWKS holding a key that signs nothing.
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
  async findAccount(_ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return {
      accountId: id,
      async claims() { return { sub: id, ...claims }; },
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
provider.use(async (ctx, next) => {
  if (faults.tamper_nonce && ctx.path === '/auth' && ctx.query.nonce) {
    ctx.query = { ...ctx.query, nonce: `${ctx.query.nonce}-tampered` };
  }
  if (otherKeys && ctx.path === '/jwks') {
    ctx.type = 'application/jwk-set+json';
    ctx.body = otherKeys;
    return;
  }
  await next();
});
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
process.on('SIGTERM', () => { server.close(); process.exit(0); });
