// The jose side of example/interop_test.go: a client nobody here wrote,
// verifying fiberauth's access tokens from its JWKS and forging tokens
// with a key of its own. Reads a JSON request on stdin, writes a JSON
// answer on stdout.
//
//   node interop.mjs verify  {"jwks": URL, "issuer", "audience", "tokens": [jwt, …]}
//     → {"results": [{"ok": true, "sub", "kid"} | {"ok": false, "error"}, …]}
//   node interop.mjs forge   {"claims": {…}, "kids": [kid, …]}
//     → {"tokens": [jwt, …]}   EdDSA, typ at+jwt, signed with a new Ed25519 key
import * as jose from 'jose';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function verify(req) {
  const jwks = jose.createRemoteJWKSet(new URL(req.jwks));
  const results = [];
  for (const token of req.tokens) {
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
        issuer: req.issuer,
        audience: req.audience,
        typ: 'at+jwt',
      });
      results.push({ ok: true, sub: payload.sub, kid: protectedHeader.kid });
    } catch (err) {
      results.push({ ok: false, error: err.code || String(err) });
    }
  }
  return { results };
}

async function forge(req) {
  const { privateKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const tokens = [];
  for (const kid of req.kids) {
    tokens.push(await new jose.SignJWT(req.claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
      .sign(privateKey));
  }
  return { tokens };
}

const commands = { verify, forge };
const cmd = commands[process.argv[2]];
if (!cmd) {
  console.error('usage: node interop.mjs verify|forge < request.json');
  process.exit(2);
}
process.stdout.write(JSON.stringify(await cmd(await readStdin())) + '\n');
