import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type User = components["schemas"]["User"];
type Item = components["schemas"]["Item"];

/** Logs in with the password grant, then reads the user and their items. */
export async function readMe(
  baseUrl: string,
  username: string,
  password: string,
): Promise<{ user: User; items: Item[] }> {
  const login = await createClient<paths>({ baseUrl }).POST("/token", {
    body: { username, password },
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  if (login.error) {
    throw new Error(`login failed: ${login.response.status} ${JSON.stringify(login.error)}`);
  }

  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${login.data.access_token}` },
  });
  const me = await client.GET("/users/me/");
  const items = await client.GET("/users/me/items/");
  if (me.error || items.error) {
    throw new Error(`reading the user failed: ${JSON.stringify(me.error ?? items.error)}`);
  }
  return { user: me.data, items: items.data };
}
