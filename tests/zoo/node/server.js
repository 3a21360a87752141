// Workspace provisioning receiver (Express). Scalekit deliveries are verified with the
// official SDK before anything else; people live in memory, keyed by directory user id.
//
// Internal read API for tooling (bearer token):
//   GET /internal/scim/users?limit=N&starting_after=<userId>   -> { data, has_more, next }
//   GET /internal/scim/users/by-email/:email                   -> the user, or 404
//   GET /internal/scim/users/:directoryUserId                  -> the user, or 404
//
// Env: ZOO_PORT, ZOO_CERT, ZOO_KEY, ZOO_WEBHOOK_SECRET, ZOO_PROBE_TOKEN, ZOO_ORGANIZATION_ID,
// ZOO_TENANT, ZOO_SCALEKIT_ENV_URL, ZOO_SCALEKIT_CLIENT_ID, ZOO_SCALEKIT_CLIENT_SECRET,
// ZOO_DEFECTS (comma-separated, for the test suite).
'use strict';

const fs = require('node:fs');
const https = require('node:https');
const crypto = require('node:crypto');
const express = require('express');
const { ScalekitClient } = require('@scalekit-sdk/node');

const env = process.env;
const defects = new Set((env.ZOO_DEFECTS || '').split(',').filter(Boolean));
const scalekit = new ScalekitClient(
  env.ZOO_SCALEKIT_ENV_URL,
  env.ZOO_SCALEKIT_CLIENT_ID,
  env.ZOO_SCALEKIT_CLIENT_SECRET,
);

const people = new Map(); // directoryUserId -> person
const processed = new Set(); // webhook-ids already handled

function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}

function findByEmail(email) {
  const wanted = email.toLowerCase();
  for (const person of people.values()) {
    if (person.primaryEmail.toLowerCase() === wanted) return person;
  }
  return undefined;
}

function checkUser(data) {
  if (!data || typeof data !== 'object') throw httpError(400, 'data is required');
  if (typeof data.id !== 'string' || !data.id) throw httpError(400, 'data.id is required');
  if (typeof data.email !== 'string' || !data.email.includes('@')) {
    throw httpError(400, 'data.email is required');
  }
  if ('active' in data && typeof data.active !== 'boolean') {
    throw httpError(400, 'data.active must be a boolean');
  }
}

function upsert(data, organizationId) {
  checkUser(data);
  if (organizationId !== env.ZOO_ORGANIZATION_ID) {
    throw httpError(422, `organization ${organizationId} is not connected`);
  }
  const owner = findByEmail(data.email);
  if (owner && owner.directoryUserId !== data.id) {
    throw httpError(409, `${data.email} belongs to another person`);
  }
  const existing = people.get(data.id);
  const displayName = data.name || [data.given_name, data.family_name].filter(Boolean).join(' ');
  const person = {
    userId: existing ? existing.userId : `usr_${crypto.randomBytes(6).toString('hex')}`,
    directoryUserId: data.id,
    primaryEmail: data.email,
    profile: { displayName, givenName: data.given_name, familyName: data.family_name },
    active: data.active !== false,
    roles: (data.roles || []).map((r) => r.role_name).filter(Boolean),
    workspaceId: env.ZOO_TENANT,
  };
  if (existing && defects.has('update-ignores-email-change')) {
    person.primaryEmail = existing.primaryEmail;
  }
  people.set(data.id, person);
}

const handlers = {
  'organization.directory.user_created': (event) => upsert(event.data, event.organization_id),
  'organization.directory.user_updated': (event) => upsert(event.data, event.organization_id),
  'organization.directory.user_deleted': (event) => {
    if (!event.data || typeof event.data.id !== 'string') throw httpError(400, 'data.id is required');
    const person = people.get(event.data.id);
    if (person) Object.assign(person, { active: false, deletedAt: new Date().toISOString() });
  },
};
for (const type of ['group_created', 'group_updated', 'group_deleted', 'enabled', 'disabled']) {
  handlers[`organization.directory.${type}`] = () => {};
}

function verified(req, payload) {
  try {
    return scalekit.verifyWebhookPayload(env.ZOO_WEBHOOK_SECRET, req.headers, payload);
  } catch (error) {
    return false;
  }
}

function receive(req, res, payload) {
  if (!verified(req, payload)) return res.status(401).json({ error: 'invalid signature' });
  let event;
  try {
    event = defects.has('json-parser-before-verify') ? req.body : JSON.parse(payload);
  } catch (error) {
    return res.status(400).json({ error: 'body is not JSON' });
  }
  if (!event || typeof event !== 'object' || typeof event.type !== 'string') {
    return res.status(400).json({ error: 'not an event' });
  }
  const webhookId = req.headers['webhook-id'];
  if (processed.has(webhookId)) return res.json({ received: true, duplicate: true });
  const handler = handlers[event.type];
  if (!handler && !defects.has('crash-on-unknown-event')) {
    return res.json({ received: true, ignored: event.type });
  }
  try {
    handler(event);
  } catch (error) {
    if (!error.status) throw error;
    return res.status(error.status).json({ error: error.message });
  }
  processed.add(webhookId);
  return res.json({ received: true });
}

const app = express();

if (defects.has('json-parser-before-verify')) {
  // Parsed by the global JSON middleware; the signature is checked over JSON.stringify(body).
  app.post('/api/webhooks/scalekit', express.json({ limit: '256kb' }), (req, res) =>
    receive(req, res, JSON.stringify(req.body)),
  );
} else {
  app.post(
    '/api/webhooks/scalekit',
    express.raw({ type: () => true, limit: '256kb' }),
    (req, res) => receive(req, res, Buffer.isBuffer(req.body) ? req.body.toString('utf8') : ''),
  );
}

app.use('/internal', (req, res, next) => {
  if (req.headers.authorization !== `Bearer ${env.ZOO_PROBE_TOKEN}`) {
    return res.status(401).json({ error: 'unauthorized' });
  }
  return next();
});

app.get('/internal/scim/users', (req, res) => {
  const limit = Math.min(Number(req.query.limit) || 50, 200);
  const all = [...people.values()];
  const after = req.query.starting_after;
  const start = after ? all.findIndex((p) => p.userId === after) + 1 : 0;
  const data = all.slice(start, start + limit);
  const hasMore = start + limit < all.length;
  res.json({ data, has_more: hasMore, next: hasMore ? data[data.length - 1].userId : null });
});

app.get('/internal/scim/users/by-email/:email', (req, res) => {
  const person = findByEmail(req.params.email);
  return person ? res.json(person) : res.status(404).json({ error: 'not found' });
});

app.get('/internal/scim/users/:directoryUserId', (req, res) => {
  const person = people.get(req.params.directoryUserId);
  return person ? res.json(person) : res.status(404).json({ error: 'not found' });
});

app.get('/health', (req, res) => res.json({ status: 'ok' }));

// Errors from the body parsers (too large, bad JSON) keep their status; anything else is ours.
app.use((error, req, res, next) => {
  res.status(error.status || error.statusCode || 500).json({ error: error.type || 'internal' });
});

https
  .createServer({ cert: fs.readFileSync(env.ZOO_CERT), key: fs.readFileSync(env.ZOO_KEY) }, app)
  .listen(Number(env.ZOO_PORT), '127.0.0.1');
