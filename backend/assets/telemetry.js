/* EchoPilot telemetry client (served at /js/telemetry.js). No dependencies.
 *
 *   <script src="https://echopilot.example/js/telemetry.js"
 *           data-key="ep_…publishable ingest key…"
 *           data-base-url="https://echopilot.example"></script>
 *   <script>EchoPilotTelemetry.track("signup", {feature: "onboarding"});</script>
 *
 * or EchoPilotTelemetry.init({key, baseUrl}) yourself. Events are queued in localStorage,
 * sent in batches (debounced), retried with exponential backoff, and flushed with
 * navigator.sendBeacon when the page is hidden. Every event carries a uuid, so a batch
 * sent twice (a retry, a beacon followed by a later send) is stored once.
 */
(function (root, factory) {
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  }
  if (root && root.document) {
    root.EchoPilotTelemetry = api.autoInit(root);
  }
})(typeof window !== "undefined" ? window : null, function () {
  "use strict";

  var PATH = "/api/v1/analytics/events";
  var DEFAULTS = {
    baseUrl: "",
    debounceMs: 1000,
    maxBatch: 100,
    maxQueue: 1000,
    baseBackoffMs: 1000,
    maxBackoffMs: 60000,
    storageKey: "echopilot_telemetry_queue",
    idKey: "echopilot_telemetry_id",
    beaconBytes: 60000
  };

  /* A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids that grow
   * with time keep the server's primary-key index append-mostly (random v4 ids cost an
   * index page write per event at scale); PostHog's client makes its event ids the same
   * way. Random bits from crypto.getRandomValues where the browser has it. */
  function uuid(env) {
    var hex = Math.floor(env.now()).toString(16);
    while (hex.length < 12) hex = "0" + hex;
    hex = hex.slice(-12);
    var bytes = null;
    if (env.crypto && typeof env.crypto.getRandomValues === "function") {
      bytes = env.crypto.getRandomValues(new Uint8Array(10));
    }
    for (var i = 0; i < 20; i++) {
      var r = bytes ? (bytes[i >> 1] >> ((i & 1) * 4)) & 15 : Math.floor(env.random() * 16);
      if (i === 0) r = 7;            // version 7
      if (i === 4) r = (r & 3) | 8;  // variant 10xx
      hex += r.toString(16);
    }
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  /* The environment a client runs in: the browser's by default; tests pass fakes. */
  function browserEnv(w) {
    return {
      fetch: w.fetch ? w.fetch.bind(w) : null,
      storage: w.localStorage || null,
      sendBeacon: w.navigator && w.navigator.sendBeacon ? w.navigator.sendBeacon.bind(w.navigator) : null,
      setTimeout: w.setTimeout.bind(w),
      clearTimeout: w.clearTimeout.bind(w),
      now: function () { return Date.now(); },
      random: Math.random,
      crypto: w.crypto || null,
      addEventListener: w.addEventListener ? w.addEventListener.bind(w) : null,
      document: w.document || null
    };
  }

  function create(options, env) {
    var o = {};
    var k;
    for (k in DEFAULTS) o[k] = DEFAULTS[k];
    for (k in options || {}) o[k] = options[k];
    if (!o.key) throw new Error("EchoPilotTelemetry: a publishable ingest key is required");
    o.maxBatch = Math.max(1, Math.min(1000, o.maxBatch));
    o.baseUrl = String(o.baseUrl).replace(/\/+$/, "");

    var queue = load();
    var timer = null;
    var inFlight = false;
    var attempt = 0;
    var retryAt = 0;
    var distinctId = o.distinctId || stored(o.idKey) || remember(o.idKey, uuid(env));
    var listeners = { sent: [], error: [] };

    function stored(key) {
      try { return env.storage ? env.storage.getItem(key) : null; } catch (e) { return null; }
    }
    function remember(key, value) {
      try { if (env.storage) env.storage.setItem(key, value); } catch (e) { /* private mode */ }
      return value;
    }
    function load() {
      try {
        var v = JSON.parse(stored(o.storageKey) || "[]");
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [];
      }
    }
    function save() {
      try {
        if (env.storage) env.storage.setItem(o.storageKey, JSON.stringify(queue));
      } catch (e) { /* quota: the in-memory queue still sends */ }
    }
    function emit(name, arg) {
      for (var i = 0; i < listeners[name].length; i++) {
        try { listeners[name][i](arg); } catch (e) { /* a listener's bug is not ours */ }
      }
    }
    function schedule(ms) {
      if (timer !== null) env.clearTimeout(timer);
      timer = env.setTimeout(function () { timer = null; flush(); }, ms);
    }
    function removeSent(uuids) {
      var done = {};
      for (var i = 0; i < uuids.length; i++) done[uuids[i]] = true;
      queue = queue.filter(function (e) { return !done[e.uuid]; });
      save();
    }
    function backoff(retryAfterSecs) {
      attempt += 1;
      var exp = Math.min(o.maxBackoffMs, o.baseBackoffMs * Math.pow(2, attempt - 1));
      // Full jitter on the upper half, so many clients do not retry in step.
      var delay = Math.round(exp / 2 + env.random() * exp / 2);
      if (retryAfterSecs > 0) delay = Math.max(delay, retryAfterSecs * 1000);
      retryAt = env.now() + delay;
      schedule(delay);
    }

    function track(event, properties) {
      queue.push({
        uuid: uuid(env),
        event: String(event),
        distinct_id: distinctId,
        ts: new Date(env.now()).toISOString(),
        properties: properties || {}
      });
      if (queue.length > o.maxQueue) queue.splice(0, queue.length - o.maxQueue);
      save();
      if (inFlight || env.now() < retryAt) return;
      if (queue.length >= o.maxBatch) schedule(0);
      else schedule(o.debounceMs);
    }

    function flush() {
      if (inFlight || queue.length === 0 || !env.fetch) return Promise.resolve(false);
      var batch = queue.slice(0, o.maxBatch);
      var ids = batch.map(function (e) { return e.uuid; });
      inFlight = true;
      return env.fetch(o.baseUrl + PATH, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Dash-Key": o.key },
        body: JSON.stringify({ events: batch }),
        keepalive: true
      }).then(function (resp) {
        inFlight = false;
        var s = resp.status;
        if (s === 200) {
          attempt = 0;
          retryAt = 0;
          removeSent(ids);
          return resp.json().then(function (body) {
            var rejected = (body && body.results || []).filter(function (r) { return r.status === 422; });
            if (rejected.length) emit("error", { status: 422, rejected: rejected });
            emit("sent", { count: ids.length, body: body });
            if (queue.length) schedule(0);
            return true;
          }, function () {
            emit("sent", { count: ids.length });
            if (queue.length) schedule(0);
            return true;
          });
        }
        if (s === 408 || s === 429 || s >= 500) {
          var ra = Number(resp.headers && resp.headers.get ? resp.headers.get("Retry-After") : 0) || 0;
          emit("error", { status: s, retrying: true });
          backoff(ra);
          return false;
        }
        // 400/401/403/404/413/415/422: sending the same batch again cannot succeed.
        removeSent(ids);
        emit("error", { status: s, dropped: ids.length });
        if (queue.length) schedule(0);
        return false;
      }, function (err) {
        inFlight = false;
        emit("error", { status: 0, retrying: true, error: String(err) });
        backoff(0);
        return false;
      });
    }

    /* Page hide: hand everything to sendBeacon (it outlives the page). The events stay in
     * storage until a fetch confirms them: a beacon that never arrived is resent on the next
     * visit, and one that did is a harmless duplicate (same uuid). */
    function flushBeacon() {
      if (!env.sendBeacon || queue.length === 0) return 0;
      var url = o.baseUrl + PATH + "?key=" + encodeURIComponent(o.key);
      var sent = 0;
      var i = 0;
      while (i < queue.length) {
        var batch = queue.slice(i, i + o.maxBatch);
        var body = JSON.stringify({ events: batch });
        while (batch.length > 1 && body.length > o.beaconBytes) {
          batch = batch.slice(0, Math.ceil(batch.length / 2));
          body = JSON.stringify({ events: batch });
        }
        if (!env.sendBeacon(url, body)) break;
        sent += batch.length;
        i += batch.length;
      }
      return sent;
    }

    if (env.addEventListener) {
      env.addEventListener("visibilitychange", function () {
        if (env.document && env.document.visibilityState === "hidden") flushBeacon();
      });
      env.addEventListener("pagehide", flushBeacon);
    }
    // Events left by an earlier page (closed tab, offline) go out soon after load.
    if (queue.length) schedule(o.debounceMs);

    return {
      track: track,
      flush: flush,
      flushBeacon: flushBeacon,
      identify: function (id) { distinctId = remember(o.idKey, String(id)); },
      distinctId: function () { return distinctId; },
      pending: function () { return queue.length; },
      on: function (name, fn) { if (listeners[name]) listeners[name].push(fn); }
    };
  }

  /* In a page: configure from the script tag's data-key / data-base-url, or wait for init(). */
  function autoInit(w) {
    var client = null;
    var early = [];
    var api = {
      init: function (options) {
        client = create(options, browserEnv(w));
        for (var i = 0; i < early.length; i++) client.track(early[i][0], early[i][1]);
        early = [];
        return client;
      },
      track: function (event, properties) {
        if (client) client.track(event, properties);
        else early.push([event, properties]);
      },
      identify: function (id) { if (client) client.identify(id); },
      flush: function () { return client ? client.flush() : Promise.resolve(false); }
    };
    var tag = w.document.currentScript;
    if (tag && tag.getAttribute && tag.getAttribute("data-key")) {
      api.init({
        key: tag.getAttribute("data-key"),
        baseUrl: tag.getAttribute("data-base-url") || ""
      });
    }
    return api;
  }

  return { create: create, autoInit: autoInit, browserEnv: browserEnv, PATH: PATH };
});
