// ReDoc in headless Chromium: the page renders the document from its own assets.
//
//   GATEHOUSE_URL=BASE_URL SCREENSHOTS=PATH_PREFIX node --test browser/redoc.mjs
//
// BASE_URL is where the API is served; the page is BASE_URL/redoc. Every request the page
// makes must stay on BASE_URL's origin, the page must come with its
// Content-Security-Policy, and nothing may violate it (the search, which runs in a worker,
// included). PATH_PREFIX-redoc.png shows the rendered page, PATH_PREFIX-redoc-search.png a
// search.
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

/** The Content-Security-Policy of /redoc: /docs's, with the inline styles ReDoc injects
 * and the worker it starts from a blob for its search. */
const CSP = new RegExp(
  "^default-src 'none'; script-src 'self' 'sha256-[A-Za-z0-9+/]{43}='; " +
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
    "worker-src blob:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'$",
);

test(`ReDoc at ${baseUrl}/redoc renders every operation from the binary's assets`, async () => {
  const profile = mkdtempSync(join(tmpdir(), "gatehouse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 1600 },
  });
  const responses = [];
  context.on("response", (response) => responses.push(response));
  const violations = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    await page.exposeFunction("reportPolicyViolation", (v) => violations.push(v));
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) =>
        window.reportPolicyViolation(`${e.violatedDirective} blocked ${e.blockedURI}`),
      );
    });
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(`${baseUrl}/redoc`);
    assert.match(response.headers()["content-security-policy"] ?? "", CSP);
    for (const summary of ["Log in for an access token", "Read the current user", "Readiness: can the service take traffic"]) {
      await page.getByText(summary, { exact: true }).first().waitFor();
    }
    await page.screenshot({ path: `${screenshots}-redoc.png` });

    // The search runs in a worker ReDoc starts from a blob.
    await page.locator('input[placeholder="Search..."]').fill("introspect");
    await page.locator('[role="search"] li[data-item-id]').first().waitFor();
    await page.screenshot({ path: `${screenshots}-redoc-search.png` });
    await page.waitForTimeout(100);

    // The script came from its own path, compressed and cacheable for good.
    const script = responses.find((r) => new URL(r.url()).pathname.includes("/assets/redoc.standalone."));
    assert.ok(script, "the page loaded ReDoc from /assets/");
    const headers = await script.allHeaders();
    assert.equal(headers["content-encoding"], "gzip");
    assert.equal(headers["cache-control"], "public, max-age=31536000, immutable");
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  const offsite = responses.map((r) => r.url()).filter((url) => new URL(url).origin !== origin);
  assert.deepEqual(offsite, [], `requests that left ${origin}`);
  assert.deepEqual(violations, [], "Content-Security-Policy violations");
});
