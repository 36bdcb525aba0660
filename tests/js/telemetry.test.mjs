// node --test tests/js/ — the browser client with fake timers, fetch, storage and sendBeacon.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const telemetry = require("../../backend/assets/telemetry.js");

/** A controllable environment: a clock with timers, a Map-backed storage, scripted fetch. */
function fakeEnv({ stored = {}, answers = [] } = {}) {
  let now = Date.parse("2026-12-01T10:00:00Z");
  let timers = [];
  let nextId = 1;
  let nextUuid = 1;
  const data = new Map(Object.entries(stored));
  const env = {
    requests: [],
    beacons: [],
    beaconOk: true,
    listeners: {},
    document: { visibilityState: "visible" },
    storage: {
      getItem: (k) => (data.has(k) ? data.get(k) : null),
      setItem: (k, v) => data.set(k, String(v)),
    },
    data,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.push({ id, at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      timers = timers.filter((t) => t.id !== id);
    },
    now: () => now,
    random: () => 0.5,
    // Distinct ids without randomness (random() is fixed so backoff delays are exact):
    // the "random" bytes of each UUIDv7 are a counter.
    crypto: {
      getRandomValues: (a) => {
        a.fill(0);
        let n = nextUuid++;
        for (let i = a.length - 1; i >= 0 && n > 0; i--, n = Math.floor(n / 256)) a[i] = n % 256;
        return a;
      },
    },
    addEventListener(name, fn) {
      (env.listeners[name] ||= []).push(fn);
    },
    fetch(url, init) {
      env.requests.push({ url, init, body: JSON.parse(init.body) });
      const a = answers.length ? answers.shift() : { status: 200 };
      if (a.error) return Promise.reject(new Error(a.error));
      const body = JSON.parse(init.body);
      const results = body.events.map((e, index) => ({ index, uuid: e.uuid, status: 201, result: "created" }));
      return Promise.resolve({
        status: a.status,
        headers: { get: (h) => (a.headers || {})[h] || null },
        json: () => Promise.resolve({ results }),
      });
    },
    sendBeacon(url, body) {
      env.beacons.push({ url, body: JSON.parse(body) });
      return env.beaconOk;
    },
    /** Advance the clock, running due timers in order (and the promises they start). */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const t = timers[0];
        if (!t || t.at > end) break;
        timers.shift();
        now = t.at;
        t.fn();
        await new Promise((r) => setImmediate(r));
      }
      now = end;
      await new Promise((r) => setImmediate(r));
    },
    pendingTimers: () => timers.length,
  };
  return env;
}

const KEY = "ep_publishable";

test("events are batched and debounced into one request", async () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: KEY, baseUrl: "https://ep.example/", debounceMs: 1000 }, env);
  c.track("a");
  await env.advance(500);
  c.track("b", { feature: "billing" });
  await env.advance(900);
  assert.equal(env.requests.length, 0, "debounced: the second event restarted the wait");
  await env.advance(200);
  assert.equal(env.requests.length, 1);
  const r = env.requests[0];
  assert.equal(r.url, "https://ep.example/api/v1/analytics/events");
  assert.equal(r.init.headers["X-Dash-Key"], KEY);
  assert.deepEqual(r.body.events.map((e) => e.event), ["a", "b"]);
  assert.equal(r.body.events[1].properties.feature, "billing");
  assert.ok(r.body.events.every((e) => e.uuid && e.distinct_id && e.ts));
  assert.equal(c.pending(), 0);
  assert.equal(env.data.get("echopilot_telemetry_queue"), "[]");
});

test("a full batch is sent at once, in batches of maxBatch", async () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: KEY, maxBatch: 3 }, env);
  for (let i = 0; i < 7; i++) c.track("e" + i);
  await env.advance(0);
  // After a success the backlog drains at once.
  assert.deepEqual(env.requests.map((r) => r.body.events.length), [3, 3, 1]);
  assert.equal(c.pending(), 0);
});

test("failures retry with exponential backoff and the same uuids", async () => {
  const env = fakeEnv({
    answers: [{ status: 503 }, { error: "offline" }, { status: 429, headers: { "Retry-After": "10" } }, { status: 200 }],
  });
  const c = telemetry.create({ key: KEY, debounceMs: 100, baseBackoffMs: 1000 }, env);
  c.track("x");
  await env.advance(100);
  assert.equal(env.requests.length, 1);
  // attempt 1: 1000 ms × (0.5 + 0.5 × 0.5) = 750 ms
  await env.advance(749);
  assert.equal(env.requests.length, 1);
  await env.advance(1);
  assert.equal(env.requests.length, 2);
  // attempt 2: 2000 ms × 0.75 = 1500 ms
  await env.advance(1499);
  assert.equal(env.requests.length, 2);
  await env.advance(1);
  assert.equal(env.requests.length, 3);
  // 429 with Retry-After: 10 s wins over 3000 ms
  await env.advance(9999);
  assert.equal(env.requests.length, 3);
  await env.advance(1);
  assert.equal(env.requests.length, 4);
  const uuids = env.requests.map((r) => r.body.events[0].uuid);
  assert.equal(new Set(uuids).size, 1, "a retry resends the same event");
  assert.equal(c.pending(), 0);
});

test("a request the server refuses for good is dropped, not retried", async () => {
  const env = fakeEnv({ answers: [{ status: 401 }] });
  const errors = [];
  const c = telemetry.create({ key: KEY, debounceMs: 10 }, env);
  c.on("error", (e) => errors.push(e));
  c.track("x");
  await env.advance(10);
  await env.advance(120000);
  assert.equal(env.requests.length, 1);
  assert.equal(c.pending(), 0);
  assert.equal(errors[0].status, 401);
});

test("unsent events survive a closed tab and go out on the next load", async () => {
  const env = fakeEnv({ answers: [{ error: "offline" }] });
  const c = telemetry.create({ key: KEY, debounceMs: 10 }, env);
  c.track("offline-1");
  c.track("offline-2");
  await env.advance(10); // fails: offline
  assert.equal(c.pending(), 2);
  const saved = env.data.get("echopilot_telemetry_queue");
  const id = env.data.get("echopilot_telemetry_id");
  // The tab closes; a new page starts with the same storage.
  const env2 = fakeEnv({ stored: { echopilot_telemetry_queue: saved, echopilot_telemetry_id: id } });
  const c2 = telemetry.create({ key: KEY, debounceMs: 10 }, env2);
  assert.equal(c2.pending(), 2);
  assert.equal(c2.distinctId(), id, "the anonymous id is kept");
  await env2.advance(10);
  assert.deepEqual(env2.requests[0].body.events.map((e) => e.event), ["offline-1", "offline-2"]);
  assert.equal(c2.pending(), 0);
});

test("page hide flushes with sendBeacon, key in the query, events kept until confirmed", async () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: KEY, baseUrl: "https://ep.example", debounceMs: 5000 }, env);
  c.identify("user-42");
  c.track("checkout", { feature: "cart" });
  env.document.visibilityState = "hidden";
  env.listeners.visibilitychange.forEach((f) => f());
  assert.equal(env.beacons.length, 1);
  assert.equal(env.beacons[0].url, "https://ep.example/api/v1/analytics/events?key=ep_publishable");
  assert.equal(env.beacons[0].body.events[0].distinct_id, "user-42");
  assert.equal(c.pending(), 1, "kept in storage: a lost beacon is resent later (same uuid)");
  await env.advance(5000);
  assert.equal(env.requests[0].body.events[0].uuid, env.beacons[0].body.events[0].uuid);
  assert.equal(c.pending(), 0);
});

test("beacons are split under the size limit", () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: KEY, beaconBytes: 400, maxBatch: 100 }, env);
  for (let i = 0; i < 6; i++) c.track("big", { pad: "x".repeat(100) });
  assert.equal(c.flushBeacon(), 6);
  assert.ok(env.beacons.length > 1);
  assert.ok(env.beacons.every((b) => JSON.stringify(b.body).length <= 400 || b.body.events.length === 1));
  assert.equal(env.beacons.reduce((n, b) => n + b.body.events.length, 0), 6);
});

test("the queue is bounded and a key is required", () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: KEY, maxQueue: 5, debounceMs: 1e9 }, env);
  for (let i = 0; i < 8; i++) c.track("e" + i);
  assert.equal(c.pending(), 5);
  assert.deepEqual(JSON.parse(env.data.get("echopilot_telemetry_queue")).map((e) => e.event), ["e3", "e4", "e5", "e6", "e7"]);
  assert.throws(() => telemetry.create({}, env), /ingest key/);
});

test("event ids are UUIDv7: version 7, RFC variant, ordered by time", async () => {
  const env = fakeEnv();
  const c = telemetry.create({ key: "ep_pub", baseUrl: "https://x" }, env);
  c.track("a");
  await env.advance(5000);
  c.track("b");
  await env.advance(5000);
  const ids = env.requests.map((r) => r.body.events[0].uuid);
  assert.equal(ids.length, 2);
  for (const id of ids) {
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
  // The first 48 bits are the time in ms.
  assert.equal(parseInt(ids[0].replace(/-/g, "").slice(0, 12), 16), Date.parse("2026-12-01T10:00:00Z"));
  assert.ok(ids[0] < ids[1], "a later event sorts after an earlier one");
  // Without crypto.getRandomValues the random bits come from Math.random.
  const old = fakeEnv();
  old.crypto = null;
  const c2 = telemetry.create({ key: "ep_pub", baseUrl: "https://x" }, old);
  c2.track("a");
  await old.advance(5000);
  assert.match(old.requests[0].body.events[0].uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
});
