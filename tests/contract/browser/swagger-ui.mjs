// Swagger UI in headless Chromium: Authorize with the password flow, or with the
// authorization-code flow through gatehouse's login page in a popup, then "Try it out".
//
//   GATEHOUSE_URL=BASE_URL SCREENSHOTS=PATH_PREFIX node --test browser/swagger-ui.mjs
//
// BASE_URL is where the API is served (http://127.0.0.1:PORT, or with a proxy prefix);
// the page is BASE_URL/docs. Every request the page makes must stay on BASE_URL's origin,
// the page must come with its Content-Security-Policy, and nothing may violate it.
// PATH_PREFIX-authorized.png shows the authorized call, PATH_PREFIX-wrong-password.png the
// refused login, PATH_PREFIX-scopes.png the Authorize dialog's scopes and
// PATH_PREFIX-not-enough-permissions.png the call with too few of them,
// PATH_PREFIX-admin-users.png the admin API's user list, PATH_PREFIX-code-flow-login.png
// the login page in the code flow's popup and PATH_PREFIX-code-flow-authorized.png the
// dialog once that flow authorized.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { chromium } from "playwright-core";

const baseUrl = process.env.GATEHOUSE_URL ?? "";
const screenshots = process.env.SCREENSHOTS ?? "";
assert.ok(baseUrl && screenshots, "set GATEHOUSE_URL and SCREENSHOTS");
const origin = new URL(baseUrl).origin;

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

/** The Content-Security-Policy of /docs: everything from the page's own origin, its one
 * inline script by its hash, no inline style, and no framing. */
const CSP = new RegExp(
  "^default-src 'none'; script-src 'self' 'sha256-[A-Za-z0-9+/]{43}='; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; " +
    "frame-ancestors 'none'$",
);

/** Runs `body(page, requests)` in a fresh browser profile; `requests` lists every URL the page fetched. */
async function withPage(body) {
  const profile = mkdtempSync(join(tmpdir(), "gatehouse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1600 },
  });
  const requests = [];
  context.on("request", (request) => requests.push(request.url()));
  const violations = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    await watchPolicyViolations(page, violations);
    const response = await page.goto(`${baseUrl}/docs`);
    assert.match(response.headers()["content-security-policy"] ?? "", CSP);
    await page.locator(".swagger-ui button.authorize").first().waitFor();
    await body(page, requests);
    await page.waitForTimeout(100);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  const offsite = requests.filter((url) => new URL(url).origin !== origin);
  assert.deepEqual(offsite, [], `requests that left ${origin}`);
  assert.deepEqual(violations, [], "Content-Security-Policy violations");
}

/** Collects into `violations` every report of a Content-Security-Policy violation: the
 * page's `securitypolicyviolation` events and the console's "Refused to ..." errors. */
async function watchPolicyViolations(page, violations) {
  await page.exposeFunction("reportPolicyViolation", (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.reportPolicyViolation(`${e.violatedDirective} blocked ${e.blockedURI}`),
    );
  });
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
}

/** The Authorize dialog's section of `flow` (`password` or `authorizationCode`): the
 * dialog shows one `.auth-container` per flow of the OAuth2 scheme, each saying its flow
 * ("Flow: password", "Flow: authorizationCode with PKCE"). */
function flowSection(page, flow) {
  const label = page.locator("p.flow code", { hasText: new RegExp(`^${flow}( with PKCE)?$`) });
  return page.locator(".auth-container").filter({ has: label });
}

/** Authorize dialog: the password flow with `username` / `password`, ticking `scopes`;
 * returns the token response. */
async function authorize(page, username, password, scopes = []) {
  await page.locator(".swagger-ui button.authorize").first().click();
  const section = flowSection(page, "password");
  await section.locator("#oauth_username").fill(username);
  await section.locator("#oauth_password").fill(password);
  for (const scope of scopes) {
    await section.locator(`label[for="${scope}-password-checkbox-OAuth2PasswordBearer"]`).click();
  }
  const tokenResponse = page.waitForResponse((r) => r.request().method() === "POST");
  await section.locator(".auth-btn-wrapper button.authorize").click();
  return tokenResponse;
}

/** "Try it out" on GET /users/me/; returns the status and body Swagger UI shows. */
async function tryReadUsersMe(page) {
  return tryOperation(page, "read_users_me_users_me__get");
}

/** "Try it out" on the operation `operationId`; returns the status and body Swagger UI shows. */
async function tryOperation(page, operationId) {
  const operation = page.locator(`#operations-default-${operationId}`);
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator("button.execute").click();
  const response = operation.locator(".live-responses-table tbody tr.response").first();
  await response.waitFor();
  const status = (await response.locator(".response-col_status").innerText()).trim();
  const body = await response.locator(".response-col_description pre.microlight").first().innerText();
  return { status, body, operation };
}

test(`Swagger UI at ${baseUrl}/docs logs in as johndoe and reads /users/me/`, async () => {
  await withPage(async (page, requests) => {
    const token = await authorize(page, "johndoe", "secret");
    assert.equal(token.url(), `${baseUrl}/token`, "the token request follows tokenUrl");
    assert.equal(token.status(), 200);
    // Authorized: the dialog now offers to log out.
    await flowSection(page, "password")
      .locator('.auth-btn-wrapper button[aria-label="Remove authorization"]')
      .waitFor();
    await page.locator("button.close-modal").click();

    const { status, body, operation } = await tryReadUsersMe(page);
    assert.equal(status, "200");
    assert.deepEqual(JSON.parse(body), {
      username: "johndoe",
      email: "johndoe@example.com",
      full_name: "John Doe",
      disabled: false,
    });
    assert.ok(requests.includes(`${baseUrl}/users/me/`), "Try it out called the API");
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${screenshots}-authorized.png` });
  });
});

test(`Swagger UI at ${baseUrl}/docs shows the 401 of a wrong password`, async () => {
  await withPage(async (page) => {
    const token = await authorize(page, "johndoe", "wrong");
    assert.equal(token.url(), `${baseUrl}/token`);
    assert.equal(token.status(), 401);
    assert.deepEqual(await token.json(), { detail: "Incorrect username or password" });
    const error = flowSection(page, "password").locator(".errors").first();
    await error.waitFor();
    assert.match(await error.innerText(), /auth error\s*Error: Unauthorized/i);
    await page.screenshot({ path: `${screenshots}-wrong-password.png` });
    await page.locator("button.close-modal").click();

    const { status, body } = await tryReadUsersMe(page);
    assert.equal(status, "401");
    assert.deepEqual(JSON.parse(body), { detail: "Not authenticated" });
  });
});

test(`Swagger UI at ${baseUrl}/docs lists the scopes and a token gets only those ticked`, async () => {
  // With `me` only, /users/me/items/ (scopes `items` and `me`) is refused.
  await withPage(async (page) => {
    await page.locator(".swagger-ui button.authorize").first().click();
    const listed = {};
    const section = flowSection(page, "password");
    for (const item of await section.locator(".scopes .checkbox").all()) {
      listed[(await item.locator(".name").innerText()).trim()] = (
        await item.locator(".description").innerText()
      ).trim();
    }
    assert.equal(listed.me, "Read information about the current user.");
    assert.equal(listed.items, "Read items.");
    assert.ok(listed.admin && listed.introspect, JSON.stringify(listed));
    await section.locator(".scopes").scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${screenshots}-scopes.png` });
    await page.locator("button.close-modal").click();

    const token = await authorize(page, "johndoe", "secret", ["me"]);
    assert.equal(token.status(), 200);
    assert.equal((await token.json()).scope, "me");
    assert.match(token.request().postData() ?? "", /(^|&)scope=me(&|$)/);
    await page.locator("button.close-modal").click();

    const { status, body, operation } = await tryOperation(page, "read_own_items_users_me_items__get");
    assert.equal(status, "401");
    assert.deepEqual(JSON.parse(body), { detail: "Not enough permissions" });
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${screenshots}-not-enough-permissions.png` });
  });
  // With `me` and `items`, it answers.
  await withPage(async (page) => {
    const token = await authorize(page, "johndoe", "secret", ["me", "items"]);
    assert.equal(token.status(), 200);
    assert.equal((await token.json()).scope, "me items");
    await page.locator("button.close-modal").click();

    const { status, body } = await tryOperation(page, "read_own_items_users_me_items__get");
    assert.equal(status, "200");
    assert.deepEqual(JSON.parse(body), [{ item_id: "Foo", owner: "johndoe" }]);
  });
});

test(`Swagger UI at ${baseUrl}/docs manages users through the admin API with the admin scope`, async () => {
  // Without `admin`, the admin API refuses; with it, Try it out lists the users.
  await withPage(async (page) => {
    const token = await authorize(page, "johndoe", "secret", ["me"]);
    assert.equal(token.status(), 200);
    await page.locator("button.close-modal").click();
    const { status, body } = await tryOperation(page, "list_users_admin_users__get");
    assert.equal(status, "401");
    assert.deepEqual(JSON.parse(body), { detail: "Not enough permissions" });
  });
  await withPage(async (page) => {
    const token = await authorize(page, "johndoe", "secret", ["admin"]);
    assert.equal(token.status(), 200);
    assert.equal((await token.json()).scope, "admin");
    await page.locator("button.close-modal").click();
    const { status, body, operation } = await tryOperation(page, "list_users_admin_users__get");
    assert.equal(status, "200");
    const users = JSON.parse(body);
    const johndoe = users.find((u) => u.username === "johndoe");
    assert.ok(johndoe, body);
    assert.deepEqual([...johndoe.scopes].sort(), ["admin", "introspect", "items", "me"]);
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${screenshots}-admin-users.png` });
  });
});

test(`Swagger UI at ${baseUrl}/docs authorizes with the code flow through gatehouse's login page`, async () => {
  await withPage(async (page, requests) => {
    await page.locator(".swagger-ui button.authorize").first().click();
    const section = flowSection(page, "authorizationCode");
    // initOAuth fills in the built-in public client.
    assert.equal(await section.locator("#client_id_authorizationCode").inputValue(), "gatehouse-docs");
    await section.locator('label[for="me-authorizationCode-checkbox-OAuth2PasswordBearer"]').click();

    const popupOpened = page.waitForEvent("popup");
    await section.locator(".auth-btn-wrapper button.authorize").click();
    const popup = await popupOpened;
    const popupViolations = [];
    popup.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) popupViolations.push(message.text());
    });
    popup.setDefaultTimeout(15_000);
    await popup.locator("h1", { hasText: "Sign in" }).waitFor();
    // The request Swagger UI sent the popup to: PKCE with S256, its redirect page.
    const request = new URL(popup.url());
    assert.equal(`${request.origin}${request.pathname}`, `${baseUrl}/authorize`);
    const query = Object.fromEntries(request.searchParams);
    assert.equal(query.response_type, "code");
    assert.equal(query.client_id, "gatehouse-docs");
    assert.equal(query.redirect_uri, `${baseUrl}/docs/oauth2-redirect`);
    assert.equal(query.scope, "me");
    assert.equal(query.code_challenge_method, "S256");
    assert.match(query.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(query.state);
    assert.match(await popup.locator("main").innerText(), /to continue to gatehouse API documentation/);
    await popup.screenshot({ path: `${screenshots}-code-flow-login.png` });

    // Signing in sends the popup to /docs/oauth2-redirect, which hands the code to
    // Swagger UI and closes; Swagger UI exchanges it at /token.
    const tokenResponse = page.waitForResponse(
      (r) => r.request().method() === "POST" && r.url() === `${baseUrl}/token`,
    );
    const closed = popup.waitForEvent("close");
    await popup.locator("#username").fill("johndoe");
    await popup.locator("#password").fill("secret");
    await popup.locator('button[type="submit"]').click();
    await closed;
    assert.deepEqual(popupViolations, [], "Content-Security-Policy violations in the popup");
    const token = await tokenResponse;
    assert.equal(token.status(), 200);
    const form = new URLSearchParams(token.request().postData() ?? "");
    assert.equal(form.get("grant_type"), "authorization_code");
    assert.equal(form.get("client_id"), "gatehouse-docs");
    assert.equal(form.get("redirect_uri"), `${baseUrl}/docs/oauth2-redirect`);
    assert.match(form.get("code_verifier") ?? "", /^[A-Za-z0-9._~-]{43,128}$/);
    assert.equal((await token.json()).scope, "me");
    assert.ok(requests.some((url) => url.startsWith(`${baseUrl}/docs/oauth2-redirect?code=`)));

    // Authorized: this flow's section now offers to log out.
    await section.locator('.auth-btn-wrapper button[aria-label="Remove authorization"]').waitFor();
    await page.screenshot({ path: `${screenshots}-code-flow-authorized.png` });
    await page.locator("button.close-modal").click();

    const { status, body } = await tryReadUsersMe(page);
    assert.equal(status, "200");
    assert.equal(JSON.parse(body).username, "johndoe");
  });
});
