// The official Scalekit Node SDK against the emulator: every call the checker's Python path
// makes, plus access-token validation and webhook verification. Prints one JSON line per
// call ({"call", "ok", "detail"}); tests/emulator/test_node_sdk.py reads them.
"use strict";

const fs = require("node:fs");
const { ScalekitClient } = require("@scalekit-sdk/node");

const env = process.env;
const results = [];

async function call(name, fn) {
  try {
    const detail = await fn();
    results.push({ call: name, ok: true, detail });
  } catch (error) {
    results.push({ call: name, ok: false, detail: String((error && error.message) || error) });
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const client = new ScalekitClient(
    env.SCALEKIT_ENVIRONMENT_URL,
    env.SCALEKIT_CLIENT_ID,
    env.SCALEKIT_CLIENT_SECRET,
  );
  const org = env.SCALEKIT_ORGANIZATION_ID;
  const dir = env.SCALEKIT_DIRECTORY_ID;

  await call("getOrganization", async () => {
    const { organization } = await client.organization.getOrganization(org);
    expect(organization.id === org, `got ${organization.id}`);
    return organization.displayName;
  });
  await call("getOrganizationByExternalId", async () => {
    const { organization } = await client.organization.getOrganizationByExternalId(
      env.SCALEKIT_ORGANIZATION_EXTERNAL_ID,
    );
    expect(organization.id === org, `got ${organization.id}`);
    return organization.externalId;
  });
  await call("listDirectories", async () => {
    const { directories } = await client.directory.listDirectories(org);
    expect(directories.some((d) => d.id === dir), "the directory is not listed");
    return directories.length;
  });
  await call("getDirectory", async () => {
    const { directory } = await client.directory.getDirectory(org, dir);
    expect(directory.id === dir, `got ${directory.id}`);
    return directory.directoryEndpoint;
  });
  await call("listDirectoryUsers", async () => {
    const ids = new Set();
    let pageToken = "";
    do {
      const page = await client.directory.listDirectoryUsers(org, dir, {
        pageSize: 2,
        pageToken,
        includeDetail: true,
      });
      for (const user of page.users) ids.add(user.id);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(ids.size === Number(env.EXPECTED_USERS), `paged ${ids.size} users`);
    return ids.size;
  });
  await call("listDirectoryGroups", async () => {
    const { groups } = await client.directory.listDirectoryGroups(org, dir);
    return groups.map((g) => g.displayName).sort();
  });
  await call("listRoles", async () => {
    const { roles } = await client.role.listRoles();
    return roles.map((r) => r.name).sort();
  });
  await call("generatePortalLink", async () => {
    const link = await client.organization.generatePortalLink(org);
    expect(link.location.startsWith("https://"), "not an HTTPS link");
    return "https";
  });
  await call("validateAccessToken", async () => {
    const token = await client.getClientAccessToken();
    expect(await client.validateAccessToken(token), "the SDK refused the emulator's token");
    const forged = token.slice(0, -4) + (token.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(!(await client.validateAccessToken(forged)), "a forged token was accepted");
    return true;
  });
  await call("verifyWebhookPayload", async () => {
    const delivery = JSON.parse(fs.readFileSync(env.DELIVERY_FILE, "utf8"));
    expect(
      client.verifyWebhookPayload(env.SCALEKIT_WEBHOOK_SECRET, delivery.headers, delivery.body),
      "a genuine delivery did not verify",
    );
    let tampered;
    try {
      tampered = client.verifyWebhookPayload(
        env.SCALEKIT_WEBHOOK_SECRET,
        delivery.headers,
        delivery.body.replace("user_created", "user_deleted"),
      );
    } catch (error) {
      tampered = false;
    }
    expect(!tampered, "a tampered delivery verified");
    return true;
  });
}

main()
  .catch((error) => results.push({ call: "setup", ok: false, detail: String(error) }))
  .finally(() => {
    for (const result of results) console.log(JSON.stringify(result));
  });
