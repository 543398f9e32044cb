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

test("the README snippet logs in and reads the user and the items", async () => {
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
  assert.deepEqual(Object.keys(token ?? {}).sort(), ["access_token", "expires_in", "scope", "token_type"]);
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
