// Sign in with gatehouse through openid-client (v6, on oauth4webapi), the certified
// OpenID Connect relying party library of Node:
//
//   GATEHOUSE_URL=BASE_URL [GATEHOUSE_ALGORITHM=EdDSA|RS256] node --test oidc/openid-client.mjs
//
// Discovery, the authorization URL with PKCE (S256), nonce and state, the login page
// driven with fetch (its form's hidden inputs read from the HTML, the cookies carried by
// hand), then authorizationCodeGrant on the callback URL (which checks state, iss, the id
// token's iss, aud, azp, nonce and times, and, with enableNonRepudiationChecks, its
// signature against the JWKS), claims() and fetchUserInfo; at_hash is checked here. Public
// and confidential clients, consent, refresh and logout.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import * as client from "openid-client";

const baseUrl = process.env.GATEHOUSE_URL ?? "";
assert.ok(baseUrl, "set GATEHOUSE_URL");
const algorithm = process.env.GATEHOUSE_ALGORITHM ?? "EdDSA";
// Never fetched: the flow stops at the redirect, whose URL the client reads.
const redirectUri = "http://127.0.0.1:9/callback";
const logoutUri = "http://127.0.0.1:9/signed-out";
const scope = "openid profile email me";

/** Registers a client through the admin API; its JSON (with `client_secret` when confidential). */
async function register(name, { confidential = false, firstParty = true } = {}) {
  const login = await fetch(`${baseUrl}/token`, {
    method: "POST",
    body: new URLSearchParams({ username: "johndoe", password: "secret", scope: "admin" }),
  });
  assert.equal(login.status, 200);
  const { access_token } = await login.json();
  const resp = await fetch(`${baseUrl}/admin/clients/`, {
    method: "POST",
    headers: { Authorization: `Bearer ${access_token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: `openid-client ${name} ${Math.random().toString(36).slice(2, 8)}`,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [logoutUri],
      confidential,
      first_party: firstParty,
    }),
  });
  assert.equal(resp.status, 201, await resp.clone().text());
  return resp.json();
}

/** openid-client's configuration from the service's discovery document. */
async function configure(registered, authentication = client.None()) {
  return client.discovery(
    new URL(baseUrl),
    registered.client_id,
    // oauth4webapi expects RS256 id tokens unless told otherwise.
    { id_token_signed_response_alg: algorithm },
    authentication,
    // http on 127.0.0.1; and the id token's signature checked, not only its claims.
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
}

/** OpenID Connect Core §3.1.3.6: base64url of the left half of the access token's hash
 * under the id token's algorithm (SHA-256 for RS256, SHA-512 for EdDSA's Ed25519). */
function atHash(accessToken) {
  const digest = createHash({ RS256: "sha256", EdDSA: "sha512" }[algorithm])
    .update(accessToken)
    .digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

/** A browser's cookie jar, kept by hand: name -> value. */
class Browser {
  cookies = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set("Cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const resp = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const line of resp.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const [name, value] = pair.trim().split(/=(.*)/s);
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return resp;
  }

  /** Posts the page's one form (`html`, from `pageUrl`) with its inputs and `fields`. */
  async submit(pageUrl, html, fields) {
    const form = formOf(html);
    const body = new URLSearchParams({ ...form.inputs, ...fields });
    return this.request(new URL(form.action, pageUrl), { method: "POST", body });
  }
}

const unescape = (s) =>
  s.replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

/** The page's one form: its action and the name and value of each input. */
function formOf(html) {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)];
  assert.equal(forms.length, 1, html);
  const attribute = (tag, name) => {
    const found = tag.match(new RegExp(`\\b${name}="([^"]*)"`));
    return found ? unescape(found[1]) : undefined;
  };
  const [, formTag, inner] = forms[0];
  assert.equal(attribute(formTag, "method"), "post");
  const inputs = {};
  for (const [tag] of inner.matchAll(/<input\b[^>]*>/g)) {
    inputs[attribute(tag, "name")] = attribute(tag, "value") ?? "";
  }
  return { action: attribute(formTag, "action"), inputs };
}

/** Signs in on the login page `url` leads to; the redirect URI with the code, as a URL. */
async function signIn(browser, url) {
  const page = await browser.request(url);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<h1>Sign in<\/h1>/);
  assert.match(page.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  const after = await browser.submit(url, html, { username: "johndoe", password: "secret" });
  assert.equal(after.status, 303, await after.clone().text());
  return new URL(after.headers.get("location"));
}

/** A new authorization request: the URL and what the callback is checked with. */
async function authorizationRequest(config, extra = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const checks = {
    pkceCodeVerifier,
    expectedNonce: client.randomNonce(),
    expectedState: client.randomState(),
    idTokenExpected: true,
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: "S256",
    nonce: checks.expectedNonce,
    state: checks.expectedState,
    ...extra,
  });
  return { url, checks };
}

test("discovery describes the service, and openid-client accepts it", async () => {
  const config = await configure(await register("discovery"));
  const metadata = config.serverMetadata();
  assert.equal(metadata.issuer, baseUrl);
  assert.equal(metadata.authorization_endpoint, `${baseUrl}/authorize`);
  assert.deepEqual(metadata.id_token_signing_alg_values_supported, [algorithm]);
  assert.ok(metadata.supportsPKCE("S256"));
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
});

test("a public client signs in with PKCE and reads the id token and userinfo", async () => {
  const registered = await register("public");
  const config = await configure(registered);
  const { url, checks } = await authorizationRequest(config);
  assert.equal(url.searchParams.get("code_challenge_method"), "S256");
  const callback = await signIn(new Browser(), url);
  assert.equal(callback.origin + callback.pathname, redirectUri);
  assert.equal(callback.searchParams.get("iss"), baseUrl);

  const tokens = await client.authorizationCodeGrant(config, callback, checks);
  assert.equal(tokens.token_type, "bearer");
  assert.deepEqual(new Set(tokens.scope.split(" ")), new Set(scope.split(" ")));
  assert.ok(tokens.refresh_token);
  const claims = tokens.claims();
  assert.equal(claims.iss, baseUrl);
  assert.equal(claims.aud, registered.client_id);
  assert.equal(claims.nonce, checks.expectedNonce);
  assert.equal(claims.preferred_username, "johndoe");
  assert.equal(claims.email, "johndoe@example.com");
  assert.equal(claims.email_verified, true);
  assert.deepEqual(claims.amr, ["pwd"]);
  assert.ok(typeof claims.auth_time === "number" && claims.auth_time <= claims.iat);
  assert.equal(claims.at_hash, atHash(tokens.access_token));
  const [header] = tokens.id_token.split(".");
  assert.equal(JSON.parse(Buffer.from(header, "base64url")).alg, algorithm);

  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.deepEqual(info, {
    sub: claims.sub,
    name: "John Doe",
    preferred_username: "johndoe",
    email: "johndoe@example.com",
    email_verified: true,
  });

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  const me = await fetch(`${baseUrl}/users/me/`, {
    headers: { Authorization: `Bearer ${refreshed.access_token}` },
  });
  assert.equal(me.status, 200);
});

for (const [name, authentication] of [
  ["client_secret_basic", client.ClientSecretBasic],
  ["client_secret_post", client.ClientSecretPost],
]) {
  test(`a confidential client authenticates with ${name}`, async () => {
    const registered = await register(name, { confidential: true });
    const config = await configure(registered, authentication(registered.client_secret));
    const { url, checks } = await authorizationRequest(config);
    const tokens = await client.authorizationCodeGrant(config, await signIn(new Browser(), url), checks);
    assert.equal(tokens.claims().aud, registered.client_id);

    // With the wrong secret: 401 invalid_client with a Basic challenge (RFC 6749 §5.2;
    // every 401 carries one), which oauth4webapi raises as such.
    const wrong = await configure(registered, authentication("not-the-secret"));
    const again = await authorizationRequest(wrong);
    const refused = await client
      .authorizationCodeGrant(wrong, await signIn(new Browser(), again.url), again.checks)
      .then(() => assert.fail("the wrong secret was accepted"), (err) => err);
    assert.equal(refused.status, 401);
    assert.equal(refused.code, "OAUTH_WWW_AUTHENTICATE_CHALLENGE");
    assert.equal(refused.cause[0].scheme, "basic");
    assert.equal((await refused.response.json()).error, "invalid_client");
  });
}

test("a third-party client gets a code once allowed, and access_denied once denied", async () => {
  const registered = await register("third party", { firstParty: false });
  const config = await configure(registered);
  const browser = new Browser();

  const denied = await authorizationRequest(config);
  const login = await browser.request(denied.url);
  const consent = await browser.submit(denied.url, await login.text(), {
    username: "johndoe",
    password: "secret",
  });
  assert.equal(consent.status, 200);
  const consentHtml = await consent.text();
  assert.match(consentHtml, /name="decision" value="deny"/);
  const deny = await browser.submit(denied.url, consentHtml, { decision: "deny" });
  assert.equal(deny.status, 303);
  await assert.rejects(
    client.authorizationCodeGrant(config, new URL(deny.headers.get("location")), denied.checks),
    (err) => err.error === "access_denied",
  );

  // Signed in: the consent page comes at once.
  const allowed = await authorizationRequest(config);
  const page = await browser.request(allowed.url);
  assert.equal(page.status, 200);
  const allow = await browser.submit(allowed.url, await page.text(), { decision: "allow" });
  assert.equal(allow.status, 303);
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(allow.headers.get("location")),
    allowed.checks,
  );
  assert.equal(tokens.claims().aud, registered.client_id);
});

test("a signed-in browser signs in again without a password, and logout ends that", async () => {
  const registered = await register("sso");
  const config = await configure(registered);
  const browser = new Browser();
  const first = await authorizationRequest(config);
  const tokens = await client.authorizationCodeGrant(config, await signIn(browser, first.url), first.checks);

  const second = await authorizationRequest(config);
  const straight = await browser.request(second.url);
  assert.equal(straight.status, 302);
  const again = await client.authorizationCodeGrant(
    config,
    new URL(straight.headers.get("location")),
    second.checks,
  );
  assert.equal(again.claims().auth_time, tokens.claims().auth_time);

  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: logoutUri,
    state: "bye",
  });
  assert.equal(logout.origin + logout.pathname, `${baseUrl}/logout`);
  const out = await browser.request(logout);
  assert.equal(out.status, 302);
  assert.equal(out.headers.get("location"), `${logoutUri}?state=bye`);
  assert.ok(!browser.cookies.has("gatehouse_session"));

  const third = await authorizationRequest(config, { prompt: "none" });
  const refused = await browser.request(third.url);
  assert.equal(refused.status, 302);
  await assert.rejects(
    client.authorizationCodeGrant(config, new URL(refused.headers.get("location")), third.checks),
    (err) => err.error === "login_required",
  );
});
