// The peer for scripts/bench-vs-peer.sh: Node's oidc-provider (OpenID Certified) set up like
// Portico's bench server, so the same driver measures both the same way.
//
// One confidential client (client_secret_basic) with the client_credentials grant; a default
// resource indicator whose access tokens are RS256 JWTs (as Portico's with
// `access_token_alg = "RS256"`); one RSA 2048 signing key in the JWKS; discovery on.
// Nothing is persisted: client_credentials JWT tokens are not stored, and oidc-provider's
// in-memory adapter holds the rest.
//
// Run from the folder where `oidc-provider` is installed (NODE_PATH does not apply to ESM
// imports), with these environment variables:
//   PEER_PORT            loopback port to listen on (required)
//   PEER_CLIENT_ID       client id (required)
//   PEER_CLIENT_SECRET   client secret (required)
//   PEER_SCOPE           scope the client and the resource server allow (default "api:read")
// It prints "listening <issuer>" on stdout once it accepts connections.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

const port = Number.parseInt(required('PEER_PORT'), 10);
const clientId = required('PEER_CLIENT_ID');
const clientSecret = required('PEER_CLIENT_SECRET');
const scope = process.env.PEER_SCOPE || 'api:read';
const issuer = `http://127.0.0.1:${port}`;
const resource = `${issuer}/api`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: 'peer-rs256',
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope,
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['openid', ...scope.split(' ')],
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope,
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
