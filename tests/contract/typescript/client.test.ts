// The TypeScript client (openapi-typescript types + openapi-fetch) against a running gatehouse.
import assert from "node:assert/strict";
import { test } from "node:test";

import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";
import { readMe } from "./snippet.js";

const baseUrl = process.env.GATEHOUSE_URL ?? "";

// Typed by the generated schemas, so tsc fails when the document's shapes change.
const johndoe: components["schemas"]["User"] = {
  username: "johndoe",
  email: "johndoe@example.com",
  full_name: "John Doe",
  disabled: false,
};
const johndoesItems: components["schemas"]["Item"][] = [{ item_id: "Foo", owner: "johndoe" }];
const wrongPassword: components["schemas"]["HTTPError"] = {
  detail: "Incorrect username or password",
};

test("the documented snippet logs in and reads the user and the items", async () => {
  const { user, items } = await readMe(baseUrl, "johndoe", "secret");

  assert.deepEqual(user, johndoe);
  assert.deepEqual(items, johndoesItems);
});

test("a wrong password is a typed 401 with the tutorial's detail", async () => {
  const { data, error, response } = await createClient<paths>({ baseUrl }).POST("/token", {
    body: { username: "johndoe", password: "wrong" },
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });

  assert.equal(data, undefined);
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("www-authenticate"), "Bearer");
  assert.deepEqual(error, wrongPassword);
});

test("a multipart login is accepted too", async () => {
  const form = new FormData();
  form.set("username", "johndoe");
  form.set("password", "secret");
  const { data, response } = await createClient<paths>({ baseUrl }).POST("/token", {
    body: { username: "johndoe", password: "secret" },
    bodySerializer: () => form,
  });

  assert.equal(response.status, 200);
  assert.equal(response.headers.get("cache-control"), "no-store");
  const token: components["schemas"]["Token"] | undefined = data;
  assert.equal(token?.token_type, "bearer");
  assert.equal(token?.expires_in, 1800);
  assert.deepEqual(Object.keys(token ?? {}).sort(), ["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
});

test("a disabled user's token reads 400 Inactive user", async () => {
  const login = await createClient<paths>({ baseUrl }).POST("/token", {
    body: { username: "alice", password: "secret2" },
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  assert.equal(login.response.status, 200);

  const { error, response } = await createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data?.access_token}` },
  }).GET("/users/me/");

  assert.equal(response.status, 400);
  assert.deepEqual(error, { detail: "Inactive user" });
});

/** A client authorized as `username`, with the token's `scope` when given. */
async function bearer(username: string, password: string, scope?: string) {
  const login = await createClient<paths>({ baseUrl }).POST("/token", {
    body: scope === undefined ? { username, password } : { username, password, scope },
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  assert.equal(login.response.status, 200);
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data?.access_token}` },
  });
}

test("an admin creates a user, changes its scopes and disables it", async () => {
  const admin = await bearer("johndoe", "secret", "admin");
  const created = await admin.POST("/admin/users/", {
    body: { username: "ts-carol", password: "carol-pw", email: "ts-carol@example.com" },
  });
  assert.equal(created.response.status, 201);
  const scopes: components["schemas"]["Scope"][] | undefined = created.data?.scopes;
  assert.deepEqual(scopes, ["me", "items"]);

  const carol = await bearer("ts-carol", "carol-pw");
  assert.equal((await carol.GET("/users/me/items/")).response.status, 200);

  const changed = await admin.PATCH("/admin/users/{username}", {
    params: { path: { username: "ts-carol" } },
    body: { scopes: ["me"] },
  });
  assert.equal(changed.response.status, 200);
  assert.deepEqual(changed.data?.scopes, ["me"]);
  const refused = await carol.GET("/users/me/items/");
  assert.equal(refused.response.status, 401);
  assert.equal(
    refused.response.headers.get("www-authenticate"),
    'Bearer scope="items me", error="insufficient_scope"',
  );
  assert.deepEqual(refused.error, { detail: "Not enough permissions" });

  const disabled = await admin.PATCH("/admin/users/{username}", {
    params: { path: { username: "ts-carol" } },
    body: { disabled: true },
  });
  assert.equal(disabled.data?.disabled, true);
  assert.equal((await carol.GET("/users/me/")).response.status, 401);
});
