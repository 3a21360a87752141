// Workspace provisioning receiver (Express). Scalekit deliveries are verified with the
// official SDK before anything else; people live in memory, keyed by directory user id.
//
// Internal read API for tooling (bearer token):
//   GET /internal/scim/users?limit=N&starting_after=<userId>   -> { data, has_more, next }
//   GET /internal/scim/users/by-email/:email                   -> the user, or 404
//   GET /internal/scim/users/:directoryUserId                  -> the user, or 404
//
// Deliveries are retried, so they can arrive late and out of order. Each person remembers the
// time of the newest event applied to them (syncedAt, from occurred_at) and older events are
// acknowledged and skipped. People who leave stay in the map with deletedAt set: Scalekit
// never reuses a directory user id, so nothing for that id applies after a deletion, and an
// email is only taken by people who have not left (a re-hire gets a new id and a new person).
// A deletion for someone we have not met yet is remembered in `departures`, so their late
// user_created cannot provision them.
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
const departures = new Map(); // directoryUserId -> when they left, for ids we never met
const processed = new Set(); // webhook-ids already handled

function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}

// The person holding an email: someone still here first, else the last to leave with it.
function findByEmail(email) {
  const wanted = email.toLowerCase();
  let former;
  for (const person of people.values()) {
    if (person.primaryEmail.toLowerCase() !== wanted) continue;
    if (!person.deletedAt) return person;
    former = person;
  }
  return former;
}

// When the event happened, in ms since the epoch (its arrival when it does not say).
function eventTime(event) {
  const at = Date.parse(event.occurred_at);
  return Number.isNaN(at) ? Date.now() : at;
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

function upsert(event) {
  const data = event.data;
  checkUser(data);
  if (event.organization_id !== env.ZOO_ORGANIZATION_ID) {
    throw httpError(422, `organization ${event.organization_id} is not connected`);
  }
  const at = eventTime(event);
  const existing = people.get(data.id);
  if (existing && (existing.deletedAt || at < existing.syncedAt)) return 'skipped';
  if (!existing && departures.has(data.id)) return 'skipped';
  const owner = findByEmail(data.email);
  if (owner && !owner.deletedAt && owner.directoryUserId !== data.id) {
    throw httpError(409, `${data.email} belongs to another person`);
  }
  const displayName = data.name || [data.given_name, data.family_name].filter(Boolean).join(' ');
  const person = {
    userId: existing ? existing.userId : `usr_${crypto.randomBytes(6).toString('hex')}`,
    directoryUserId: data.id,
    primaryEmail: data.email,
    profile: { displayName, givenName: data.given_name, familyName: data.family_name },
    active: data.active !== false,
    roles: (data.roles || []).map((r) => r.role_name).filter(Boolean),
    workspaceId: env.ZOO_TENANT,
    syncedAt: at,
  };
  if (existing && defects.has('update-ignores-email-change')) {
    person.primaryEmail = existing.primaryEmail;
  }
  people.set(data.id, person);
  return 'applied';
}

function remove(event) {
  const data = event.data;
  if (!data || typeof data.id !== 'string') throw httpError(400, 'data.id is required');
  const at = eventTime(event);
  const person = people.get(data.id);
  if (defects.has('erase-on-delete')) {
    // Right to erasure: nothing about a person who left is kept.
    people.delete(data.id);
    return 'applied';
  }
  if (!person) {
    departures.set(data.id, at);
  } else if (!person.deletedAt) {
    Object.assign(person, { active: false, deletedAt: new Date(at).toISOString(), syncedAt: at });
  }
  return 'applied';
}

const handlers = {
  'organization.directory.user_created': upsert,
  'organization.directory.user_updated': upsert,
  'organization.directory.user_deleted': remove,
};
// Roles arrive on the user events; turning the directory on or off changes nothing here.
for (const type of [
  'organization.directory.group_created',
  'organization.directory.group_updated',
  'organization.directory.group_deleted',
  'organization.directory_enabled',
  'organization.directory_disabled',
]) {
  handlers[type] = () => 'applied';
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
  let outcome;
  try {
    outcome = handler(event);
  } catch (error) {
    if (!error.status) throw error;
    return res.status(error.status).json({ error: error.message });
  }
  processed.add(webhookId);
  return res.json({ received: true, ...(outcome === 'skipped' && { skipped: 'superseded' }) });
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
