/* Live updates: one WebSocket per page, reconnecting with backoff, batching
 * bursts into one redraw.
 *
 * Messages from /ws (see live/ws.py) are queued here, outside Dash, and
 * flushed at most every FLUSH_MS: new and changed runs go to the Waterfall's
 * build stream (`stream-grid`) as one rowTransaction, and `live-version` is
 * bumped at most every BUMP_MS so that the cards and the commit grid
 * re-query.  After a reconnect or a gap in `seq`, the stream is reloaded
 * from /api/builds and live-version bumped (catch-up).  The `live-badge`
 * says live / reconnecting, and how far behind the server is when a `lag`
 * message says its processing lag is LAG_SHOWN_S or more.  Pushed text only ever reaches the page as data
 * (grid rows, badge text), never as HTML.
 */
(function () {
  "use strict";
  var FLUSH_MS = 300, BUMP_MS = 1000, MAX_ROWS = 50, SILENCE_MS = 45000;
  var BACKOFF_MIN = 500, BACKOFF_MAX = 15000, LAG_SHOWN_S = 5;
  // The build stream shows the newest runs of every branch, narrowed only by the
  // URL's repo and workflow (store.queries.waterfall.stream_rows): so do pushed rows.
  var STREAM_FILTERS = ["repo", "workflow"];
  var BADGES = {
    live: ["live", "badge bg-success ms-2"],
    connecting: ["connecting", "badge bg-secondary ms-2"],
    reconnecting: ["reconnecting", "badge bg-warning text-dark ms-2"],
    behind: ["live", "badge bg-warning text-dark ms-2"]
  };

  var live = window.buildmonLive = {
    ws: null, lastSeq: null, everConnected: false, attempts: 0, queue: [], flushTimer: null,
    lastFlush: 0, lastBump: 0, bumpTimer: null, version: 0, needCatchUp: false, lastMessageAt: 0,
    badge: "connecting", reconnectTimer: null, lag: 0,
    stats: {messages: 0, flushes: 0, transactions: 0, bumps: 0, catchups: 0, connects: 0}
  };

  function prefix() {
    try {
      var config = JSON.parse(document.getElementById("_dash-config").textContent);
      return config.requests_pathname_prefix || "/";
    } catch (e) {
      return "/";
    }
  }

  function wsUrl() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + prefix() + "ws";
  }

  function setProps(id, props) {
    var dc = window.dash_clientside;
    if (!dc || !dc.set_props) { return false; }
    try { dc.set_props(id, props); return true; } catch (e) { return false; }
  }

  function showBadge(state) {
    live.badge = state;
    var el = document.getElementById("live-badge");
    if (!el) { return; }
    var look = BADGES[state], title = "Live updates: " + look[0];
    if (state === "live" && live.lag >= LAG_SHOWN_S) {
      var behind = live.lag < 120 ? Math.round(live.lag) + " s" : Math.round(live.lag / 60) + " min";
      look = [look[0] + " \u00b7 " + behind + " behind", BADGES.behind[1]];
      title = "Live updates: webhook deliveries are waiting " + behind + " to be processed";
    }
    if (el.textContent !== look[0] || el.className !== look[1]) {
      setProps("live-badge", {children: look[0], className: look[1], title: title});
    }
  }

  function bump(now) {
    live.lastBump = now;
    live.version += 1;
    live.stats.bumps += 1;
    setProps("live-version", {data: live.version});
  }

  function bumpThrottled() {
    var now = Date.now(), wait = live.lastBump + BUMP_MS - now;
    if (wait <= 0) { bump(now); return; }
    if (!live.bumpTimer) {
      live.bumpTimer = setTimeout(function () { live.bumpTimer = null; bump(Date.now()); }, wait);
    }
  }

  function pageFilters() {
    var params = new URLSearchParams(window.location.search), out = {};
    STREAM_FILTERS.forEach(function (name) {
      var value = (params.get(name) || "").trim();
      if (value) { out[name] = value; }
    });
    return out;
  }

  function matches(row, filters) {
    return STREAM_FILTERS.every(function (name) { return filters[name] === undefined || row[name] === filters[name]; });
  }

  function gridApi() {
    if (!document.getElementById("stream-grid") || !window.dash_ag_grid) { return null; }
    try { return window.dash_ag_grid.getApi("stream-grid"); } catch (e) { return null; }
  }

  // One rowTransaction for a batch of runs: update rows shown, add new ones on top, keep MAX_ROWS.
  function applyRuns(rows) {
    var api = gridApi();
    if (!api) { return; }
    var shown = {}, order = [];
    api.forEachNode(function (node) {
      if (node.data && node.data.id !== undefined) { shown[String(node.data.id)] = node.data; order.push(node.data); }
    });
    var filters = pageFilters(), add = [], update = [], remove = [], removed = {};
    rows.forEach(function (row) {
      var key = String(row.id);
      if (shown[key]) {
        if (matches(row, filters)) { update.push(row); } else { remove.push(shown[key]); removed[key] = true; }
      } else if (matches(row, filters)) {
        add.push(row);
      }
    });
    add.sort(function (a, b) { return (b.createtime || 0) - (a.createtime || 0) || b.id - a.id; });
    add = add.slice(0, MAX_ROWS);
    var extra = order.length - remove.length + add.length - MAX_ROWS;
    for (var i = order.length - 1; i >= 0 && extra > 0; i--) {
      var key = String(order[i].id);
      if (!removed[key]) {
        remove.push(order[i]);
        removed[key] = true;
        extra -= 1;
        update = update.filter(function (row) { return String(row.id) !== key; });
      }
    }
    if (!add.length && !update.length && !remove.length) { return; }
    live.stats.transactions += 1;
    setProps("stream-grid", {rowTransaction: {add: add, addIndex: 0, update: update, remove: remove, async: false}});
  }

  // After a reconnect or a gap: reload the stream's rows, and have the views re-query.
  function catchUp() {
    live.stats.catchups += 1;
    live.needCatchUp = false;
    bump(Date.now());
    if (!document.getElementById("stream-grid")) { return; }
    var query = new URLSearchParams(pageFilters());
    query.set("limit", String(MAX_ROWS));
    fetch(prefix() + "api/builds?" + query.toString(), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body && body.items) { setProps("stream-grid", {rowData: body.items}); } })
      .catch(function () { /* the next reconnect tries again */ });
  }

  function flush() {
    live.flushTimer = null;
    live.lastFlush = Date.now();
    live.stats.flushes += 1;
    var batch = live.queue;
    live.queue = [];
    if (live.needCatchUp) { catchUp(); return; }
    var runs = {}, ids = [];
    batch.forEach(function (message) {
      if (message.type === "run" && message.row && message.row.id !== undefined && message.row.id !== null) {
        if (!runs[message.row.id]) { ids.push(message.row.id); }
        runs[message.row.id] = message.row;  // the latest report of a run wins
      }
    });
    if (ids.length) { applyRuns(ids.map(function (id) { return runs[id]; })); }
    if (batch.length) { bumpThrottled(); }
  }

  function scheduleFlush() {
    if (live.flushTimer) { return; }
    live.flushTimer = setTimeout(flush, Math.max(0, live.lastFlush + FLUSH_MS - Date.now()));
  }

  function receive(message) {
    live.lastMessageAt = Date.now();
    var seq = typeof message.seq === "number" ? message.seq : null;
    if (message.type === "hello") {
      // Only a socket the server kept (it says hello) ends the backoff: one it closes at once (1013,
      // too many connections or server busy) opened too, and must not bring the next try forward.
      live.attempts = 0;
      if (live.everConnected) { live.needCatchUp = true; scheduleFlush(); }
      live.everConnected = true;
      live.lastSeq = seq;
      return;
    }
    if (seq !== null && live.lastSeq !== null) {
      var expected = message.type === "ping" ? live.lastSeq : live.lastSeq + 1;
      if (seq > expected) { live.needCatchUp = true; scheduleFlush(); }
    }
    if (seq !== null) { live.lastSeq = live.lastSeq === null ? seq : Math.max(live.lastSeq, seq); }
    if (message.type === "ping") { return; }
    if (message.type === "lag") {
      live.lag = typeof message.seconds === "number" ? message.seconds : 0;
      showBadge(live.badge);
      return;
    }
    live.stats.messages += 1;
    live.queue.push(message);
    scheduleFlush();
  }

  function reconnectLater() {
    if (live.reconnectTimer) { return; }
    var delay = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, live.attempts));
    delay = delay / 2 + Math.random() * delay / 2;  // jitter: not every tab at once after a restart
    live.attempts += 1;
    live.reconnectTimer = setTimeout(function () { live.reconnectTimer = null; connect(); }, delay);
  }

  function connect() {
    if (live.ws) { return; }
    showBadge(live.everConnected ? "reconnecting" : "connecting");
    var ws;
    try { ws = new WebSocket(wsUrl()); } catch (e) { reconnectLater(); return; }
    live.ws = ws;
    ws.onopen = function () {
      live.lastMessageAt = Date.now();
      live.stats.connects += 1;
      showBadge("live");
    };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message && typeof message === "object") { receive(message); }
    };
    ws.onclose = function () {
      if (live.ws === ws) { live.ws = null; }
      showBadge("reconnecting");
      reconnectLater();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function reconnectNow() {
    if (live.ws) { return; }
    if (live.reconnectTimer) { clearTimeout(live.reconnectTimer); live.reconnectTimer = null; }
    live.attempts = 0;
    connect();
  }

  // A connection silent for longer than the server's heartbeat is dead (sleep, network change): replace it.
  setInterval(function () {
    if (live.ws && live.ws.readyState === WebSocket.OPEN && Date.now() - live.lastMessageAt > SILENCE_MS) {
      live.ws.close();
    }
    showBadge(live.badge);  // the shell may have been re-rendered with its initial text
  }, 1000);
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { reconnectNow(); }
  });
  connect();
})();
