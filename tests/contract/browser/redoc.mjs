// ReDoc in headless Chromium: the page renders the document from its own assets.
//
//   GATEHOUSE_URL=BASE_URL SCREENSHOTS=PATH_PREFIX node --test browser/redoc.mjs
//
// BASE_URL is where the API is served; the page is BASE_URL/redoc. Every request the page
// makes must stay on BASE_URL's origin. PATH_PREFIX-redoc.png shows the rendered page.
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
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    await page.goto(`${baseUrl}/redoc`);
    for (const summary of ["Log in for an access token", "Read the current user", "Readiness: can the service take traffic"]) {
      await page.getByText(summary, { exact: true }).first().waitFor();
    }
    await page.screenshot({ path: `${screenshots}-redoc.png` });

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
});
