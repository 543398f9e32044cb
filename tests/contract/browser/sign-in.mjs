// Sign in with gatehouse in headless Chromium: a registered client's authorization-code
// flow through the real login and consent pages, to a client played by a small local
// HTTP server that records what it is sent back.
//
//   GATEHOUSE_URL=BASE_URL SCREENSHOTS=PATH_PREFIX node --test browser/sign-in.mjs
//
// PATH_PREFIX-login.png shows the login page, -wrong-password.png its error,
// -consent.png the consent page, -signed-in.png the client's page with the code,
// -signed-out.png the client's page after logout, -framed.png a page framing the login
// page (the frame stays empty).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

const baseUrl = process.env.GATEHOUSE_URL ?? "";
const screenshots = process.env.SCREENSHOTS ?? "";
assert.ok(baseUrl && screenshots, "set GATEHOUSE_URL and SCREENSHOTS");

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// ------------------------------------------------------------------- the client's server

/** What the client's server was sent: each request's path and query, in order. */
const received = [];
let clientOrigin = "";
/** The page `/framing` serves: set by the framing test. */
let framingTarget = "";

const clientServer = createServer((req, res) => {
  const url = new URL(req.url, clientOrigin);
  if (url.pathname === "/favicon.ico") {
    res.statusCode = 404;
    res.end();
    return;
  }
  received.push({ path: url.pathname, query: Object.fromEntries(url.searchParams) });
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  const text = (s) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  if (url.pathname === "/framing") {
    res.end(
      `<!DOCTYPE html><title>A page framing the login page</title><h1>Framing</h1>` +
        `<iframe id="framed" src="${text(framingTarget)}" width="600" height="500"></iframe>`,
    );
    return;
  }
  res.end(
    `<!DOCTYPE html><title>The client</title><h1>Back at the client: ${text(url.pathname)}</h1>` +
      `<pre id="query">${text(JSON.stringify(Object.fromEntries(url.searchParams), null, 2))}</pre>`,
  );
});

let browser;
let admin;

before(async () => {
  await new Promise((resolve) => clientServer.listen(0, "127.0.0.1", resolve));
  clientOrigin = `http://127.0.0.1:${clientServer.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const login = await fetch(`${baseUrl}/token`, {
    method: "POST",
    body: new URLSearchParams({ username: "johndoe", password: "secret", scope: "admin" }),
  });
  assert.equal(login.status, 200);
  admin = (await login.json()).access_token;
});

after(async () => {
  await browser?.close();
  clientServer.closeAllConnections();
  await new Promise((resolve) => clientServer.close(resolve));
});

// ----------------------------------------------------------------------------- helpers

/** Registers a client whose redirect URIs are on the client's server. */
async function register(name, firstParty = true) {
  const resp = await fetch(`${baseUrl}/admin/clients/`, {
    method: "POST",
    headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: `Browser ${name}`,
      redirect_uris: [`${clientOrigin}/callback`],
      post_logout_redirect_uris: [`${clientOrigin}/signed-out`],
      confidential: false,
      first_party: firstParty,
    }),
  });
  assert.equal(resp.status, 201, await resp.clone().text());
  return resp.json();
}

/** A new authorization request of `client`: its URL, state and code verifier. */
function authorizationRequest(client, extra = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const state = randomBytes(9).toString("base64url");
  const params = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: `${clientOrigin}/callback`,
    scope: "openid profile me",
    state,
    nonce: randomBytes(9).toString("base64url"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    ...extra,
  });
  return { url: `${baseUrl}/authorize?${params}`, state, verifier };
}

/** Exchanges the code the client was sent back; the token response. */
async function exchange(client, request, code) {
  const resp = await fetch(`${baseUrl}/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${clientOrigin}/callback`,
      code_verifier: request.verifier,
      client_id: client.client_id,
    }),
  });
  assert.equal(resp.status, 200, await resp.clone().text());
  return resp.json();
}

/** The last request the client's server got, once it has its path. */
async function lastReceived(page, path) {
  await page.waitForURL((url) => url.href.startsWith(`${clientOrigin}${path}`));
  const last = received.at(-1);
  assert.equal(last.path, path);
  return last.query;
}

/** Runs `body(page)` in a fresh browser context (no cookies); fails on any report of a
 * Content-Security-Policy violation unless `expectViolations`. */
async function withPage(body, { expectViolations = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const violations = [];
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("console", (message) => {
      if (/Content Security Policy|frame-ancestors/i.test(message.text())) {
        violations.push(message.text());
      }
    });
    await body(page, violations);
  } finally {
    await context.close();
  }
  if (!expectViolations) assert.deepEqual(violations, [], "Content-Security-Policy violations");
  return violations;
}

/** On the login page: fills in and submits the form. */
async function signIn(page, username = "johndoe", password = "secret") {
  await assert.doesNotReject(page.locator("h1", { hasText: "Sign in" }).waitFor());
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(password);
  await page.locator('button[type="submit"]').click();
}

// ------------------------------------------------------------------------------- tests

test("a first-party client's flow: the login page, then back with the code", async () => {
  const client = await register("first party");
  const request = authorizationRequest(client);
  await withPage(async (page) => {
    const response = await page.goto(request.url);
    assert.equal(response.status(), 200);
    const policy = response.headers()["content-security-policy"];
    assert.match(policy, /frame-ancestors 'none'/);
    assert.ok(policy.includes(`form-action 'self' ${clientOrigin};`), policy);
    assert.match(await page.locator("main").innerText(), new RegExp(`to continue to ${client.client_name}`));
    await page.screenshot({ path: `${screenshots}-login.png` });

    await signIn(page);
    const query = await lastReceived(page, "/callback");
    assert.deepEqual(Object.keys(query).sort(), ["code", "iss", "state"]);
    assert.equal(query.state, request.state);
    assert.equal(query.iss, new URL(baseUrl).origin);
    await page.screenshot({ path: `${screenshots}-signed-in.png` });

    const token = await exchange(client, request, query.code);
    assert.ok(token.id_token && token.access_token);
    const me = await fetch(`${baseUrl}/users/me/`, {
      headers: { Authorization: `Bearer ${token.access_token}` },
    });
    assert.equal((await me.json()).username, "johndoe");
    // The session cookie is the service's, and scripts cannot read it.
    const cookies = await page.context().cookies(baseUrl);
    const session = cookies.find((c) => c.name === "gatehouse_session");
    assert.ok(session && session.httpOnly && session.sameSite === "Lax", JSON.stringify(cookies));
  });
});

test("a wrong password shows the login page's error, and nothing reaches the client", async () => {
  const client = await register("wrong password");
  const request = authorizationRequest(client);
  await withPage(async (page) => {
    await page.goto(request.url);
    const seen = received.length;
    const answer = page.waitForResponse((r) => r.request().method() === "POST");
    await signIn(page, "johndoe", "wrong");
    assert.equal((await answer).status(), 401);
    const problem = page.locator('.problem[role="alert"]');
    assert.equal((await problem.innerText()).trim(), "Incorrect username or password");
    // The username stays filled in; the password does not.
    assert.equal(await page.locator("#username").inputValue(), "johndoe");
    assert.equal(await page.locator("#password").inputValue(), "");
    await page.screenshot({ path: `${screenshots}-wrong-password.png` });
    assert.equal(received.length, seen);

    await signIn(page);
    assert.equal((await lastReceived(page, "/callback")).state, request.state);
  });
});

test("a third-party client: the consent page denies, then allows", async () => {
  const client = await register("third party", false);
  await withPage(async (page) => {
    const denied = authorizationRequest(client);
    await page.goto(denied.url);
    await signIn(page);
    await page.locator("h1", { hasText: "Allow" }).waitFor();
    const text = await page.locator("main").innerText();
    assert.match(text, new RegExp(`Allow ${client.client_name} access\\?`));
    assert.match(text, /Signed in as johndoe/);
    assert.match(text, /Read information about the current user\./);
    await page.screenshot({ path: `${screenshots}-consent.png` });
    await page.getByRole("button", { name: "Deny" }).click();
    const refused = await lastReceived(page, "/callback");
    assert.equal(refused.error, "access_denied");
    assert.equal(refused.state, denied.state);
    assert.equal(refused.code, undefined);

    // Signed in now: the consent page comes at once.
    const allowed = authorizationRequest(client);
    await page.goto(allowed.url);
    await page.getByRole("button", { name: "Allow" }).click();
    const query = await lastReceived(page, "/callback");
    assert.equal(query.state, allowed.state);
    await exchange(client, allowed, query.code);
  });
});

test("single sign-on: a second authorization skips the login page, prompt=login shows it", async () => {
  const client = await register("single sign-on");
  const other = await register("single sign-on, another");
  await withPage(async (page) => {
    await page.goto(authorizationRequest(client).url);
    await signIn(page);
    await lastReceived(page, "/callback");

    // Another client, same browser: no page of gatehouse's is shown on the way.
    const second = authorizationRequest(other);
    const documents = [];
    const onResponse = (r) => {
      if (r.request().resourceType() === "document") documents.push([r.status(), r.url()]);
    };
    page.on("response", onResponse);
    await page.goto(second.url);
    const query = await lastReceived(page, "/callback");
    page.off("response", onResponse);
    assert.equal(query.state, second.state);
    assert.deepEqual(
      documents.map(([status, url]) => [status, new URL(url).origin]),
      [
        [302, new URL(baseUrl).origin],
        [200, clientOrigin],
      ],
    );
    await exchange(other, second, query.code);

    // prompt=login: the login page again.
    const again = authorizationRequest(client, { prompt: "login" });
    await page.goto(again.url);
    await signIn(page);
    assert.equal((await lastReceived(page, "/callback")).state, again.state);
  });
});

test("logout returns to the client's registered page, and the next sign-in asks again", async () => {
  const client = await register("logout");
  await withPage(async (page) => {
    const request = authorizationRequest(client);
    await page.goto(request.url);
    await signIn(page);
    const token = await exchange(client, request, (await lastReceived(page, "/callback")).code);

    const logout = new URLSearchParams({
      id_token_hint: token.id_token,
      post_logout_redirect_uri: `${clientOrigin}/signed-out`,
      state: "see-you",
    });
    await page.goto(`${baseUrl}/logout?${logout}`);
    assert.deepEqual(await lastReceived(page, "/signed-out"), { state: "see-you" });
    await page.screenshot({ path: `${screenshots}-signed-out.png` });
    const cookies = await page.context().cookies(baseUrl);
    assert.ok(!cookies.some((c) => c.name === "gatehouse_session"), JSON.stringify(cookies));

    const response = await page.goto(authorizationRequest(client).url);
    assert.equal(response.status(), 200);
    await page.locator("h1", { hasText: "Sign in" }).waitFor();
  });
});

test("another site cannot frame the login page", async () => {
  const client = await register("framed");
  framingTarget = authorizationRequest(client).url;
  const violations = await withPage(
    async (page) => {
      const framed = page.waitForResponse((r) => r.url() === framingTarget);
      await page.goto(`${clientOrigin}/framing`);
      const response = await framed;
      // Served, but with a policy that forbids any framing, and the old header too.
      assert.equal(response.status(), 200);
      assert.match(response.headers()["content-security-policy"], /frame-ancestors 'none'/);
      assert.equal(response.headers()["x-frame-options"], "DENY");
      await page.waitForTimeout(500);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, "the iframe has a frame");
      // Chromium shows its error page in the frame instead of the login page.
      assert.notEqual(frame.url(), framingTarget);
      assert.equal(await frame.locator("#username").count(), 0);
      assert.equal(await frame.locator("form").count(), 0);
      await page.screenshot({ path: `${screenshots}-framed.png` });
    },
    { expectViolations: true },
  );
  assert.ok(
    violations.some((v) => /frame-ancestors 'none'/.test(v)),
    `Chromium reports the refusal: ${JSON.stringify(violations)}`,
  );
});
