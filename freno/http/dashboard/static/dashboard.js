"use strict";
// freno's status page: polls this node's JSON every second (the server
// caches it per second), draws inline SVG, and follows the leader.
(function () {
  var WINDOW = 900;            // seconds of history shown
  var POLL_MS = 1000;
  var TIMEOUT_MS = 2500;
  var here = window.location.origin;
  var source = here;           // whose data is shown
  var members = [];            // last known members, with their URLs
  var selected = null;         // the selected cluster's name
  var picked = false;          // whether the user chose it (else: the worst row)
  var history = {};            // cluster name -> [[t, v], ...]
  var lastOk = 0;              // performance.now() of the last good answer
  var failures = 0;
  var state = null;
  var stateAt = 0;             // performance.now() when state arrived
  var searching = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function num(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    if (a !== 0 && a < 0.001) return v.toPrecision(3);
    if (a >= 1000) return v.toFixed(0);
    return String(Math.round(v * 1000) / 1000);
  }
  function age(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return Math.round(ms / 60000) + " min";
  }
  function duration(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m) return m + "m " + (x < 10 ? "0" : "") + x + "s";
    return x + "s";
  }
  function clock(t) {
    var d = new Date(t * 1000);
    return d.toISOString().substring(11, 19);
  }
  function serverNow() {
    return state ? state.time_unix + (performance.now() - stateAt) / 1000 : Date.now() / 1000;
  }

  function get(base, path) {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    return fetch(base + path, { cache: "no-store", signal: ctl.signal }).then(function (r) {
      clearTimeout(timer);
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    }, function (e) { clearTimeout(timer); throw e; });
  }

  // -- following the leader ---------------------------------------------
  function banner(html, bad) {
    var b = $("banner");
    clear(b);
    if (!html) { b.hidden = true; return; }
    for (var i = 0; i < html.length; i++) b.appendChild(typeof html[i] === "string" ? document.createTextNode(html[i]) : html[i]);
    b.className = "banner" + (bad ? " bad" : "");
    b.hidden = false;
  }
  function link(url, text) { return el("a", { href: url + "/dashboard", text: text || url }); }

  function explain(s) {
    // What the banner says about where the data comes from.
    if (source === here && s.is_leader) return banner(null);
    if (source === here && !s.is_leader) {
      if (s.leader && s.leader_url) {
        return banner(["This node (" + s.node + ") is a follower: its own values are not the serving data. The leader is ",
          link(s.leader_url, s.leader), "."]);
      }
      return banner(["This node (" + s.node + ") is a follower and knows no leader right now."], true);
    }
    if (s.is_leader) {
      return banner(["The node that served this page (" + here + ") does not answer. Following the leader ",
        link(source, s.node), "."], true);
    }
    banner(["The node that served this page (" + here + ") does not answer. Showing " + s.node +
      (s.leader && s.leader_url ? ", a follower; the leader is " : ", a follower that knows no leader."),
      s.leader && s.leader_url ? link(s.leader_url, s.leader) : ""], true);
  }

  function lost() {
    // The source stopped answering: ask the members we know about.
    if (searching) return;
    searching = true;
    var urls = members.map(function (m) { return m.url; }).filter(function (u) { return u && u !== source; });
    if (source !== here && urls.indexOf(here) < 0) urls.unshift(here);
    var found = null;
    var tries = urls.map(function (u) {
      return get(u, "/dashboard/state.json").then(function (s) {
        if (!found || (s.is_leader && !found.s.is_leader)) found = { url: u, s: s };
      }, function () {});
    });
    Promise.all(tries).then(function () {
      searching = false;
      if (!found) {
        banner(["No node answers (tried " + (urls.length + 1) + "). Retrying every second…"], true);
        return;
      }
      var next = found.s.is_leader || !found.s.leader_url ? found.url : found.s.leader_url;
      source = next;
      failures = 0;
    });
  }

  // -- polling -----------------------------------------------------------
  function poll() {
    var started = performance.now();
    get(source, "/dashboard/state.json").then(function (s) {
      failures = 0;
      if (!s.is_leader && s.leader_url && s.leader_url !== source) {
        // A follower's values are not the serving data: show the leader's,
        // when it answers, and say so.
        return get(s.leader_url, "/dashboard/state.json").then(function (l) {
          if (source === here) { show(l, s); } else { source = s.leader_url; show(l, null); }
        }, function () { show(s, null); });
      }
      show(s, null);
    }).catch(function (e) {
      failures++;
      if (failures >= 2) lost();
      setFresh();
    }).then(function () {
      setTimeout(poll, Math.max(100, POLL_MS - (performance.now() - started)));
    });
  }

  var historyFrom = null;       // {base, started}: whose buffer `history` holds
  var historyLast = null;       // the time of the last point held

  function pollHistory() {
    // The whole buffer once, then only the points after the last one held
    // (a new leader, or another node followed, starts over).
    var started = performance.now();
    var base = dataSource;
    var whole = !historyFrom || historyFrom.base !== base || historyLast === null;
    get(base, "/api/v1/history" + (whole ? "" : "?since=" + historyLast)).then(function (h) {
      if (!whole && (h.started_unix !== historyFrom.started || !h.is_leader)) {
        historyFrom = null;
        return;
      }
      var next = whole ? {} : history;
      var cut = h.time_unix - WINDOW;
      var last = whole ? null : historyLast;
      h.clusters.forEach(function (c) {
        var points = (next[c.name] || []).concat(c.points);
        while (points.length && points[0][0] < cut) points.shift();
        next[c.name] = points;
        if (c.points.length && (last === null || c.points[c.points.length - 1][0] > last)) last = c.points[c.points.length - 1][0];
      });
      history = next;
      historyLast = last;
      historyFrom = { base: base, started: h.started_unix };
    }).catch(function () {}).then(function () {
      setTimeout(pollHistory, Math.max(100, POLL_MS - (performance.now() - started)));
    });
  }

  function pollDetail() {
    var started = performance.now();
    var name = selected;
    var p = name ? get(dataSource, "/dashboard/clusters/" + encodeURIComponent(name) + ".json") : Promise.resolve(null);
    p.then(function (d) { if (d && name === selected) showDetail(d.cluster); }).catch(function () {}).then(function () {
      setTimeout(pollDetail, Math.max(100, POLL_MS - (performance.now() - started)));
    });
  }

  var dataSource = here;        // the node whose values are drawn (a leader, when one answers)

  function show(s, follower) {
    state = s;
    stateAt = performance.now();
    lastOk = stateAt;
    if (s.members && s.members.length) members = s.members;
    if (follower) {
      dataSource = follower.leader_url;
      banner(["This node (" + follower.node + ") is a follower: its own values are not the serving data. Showing the leader ",
        link(follower.leader_url, follower.leader), "."]);
    } else {
      dataSource = source;
      explain(s);
    }
    var role = $("role");
    role.textContent = follower ? "follower" : (s.is_leader ? "leader" : s.state.toLowerCase());
    role.className = "badge " + (follower || !s.is_leader ? "follower" : "leader");
    $("node").textContent = (follower ? follower.node : s.node);
    $("term").textContent = s.term === null ? "–" : s.term;
    drawClusters(s);
    drawRaft(s);
    drawThrottles();
    drawRecent(s);
    drawAudit(s);
    setFresh();
  }

  function setFresh() {
    var f = $("fresh");
    if (!lastOk) { f.textContent = "connecting…"; return; }
    var ago = (performance.now() - lastOk) / 1000;
    f.textContent = ago < 2 ? "live" : "no answer for " + duration(ago);
    f.className = "fresh" + (ago < 2 ? "" : ago < 5 ? " late" : " lost");
    if (ago >= 2) { $("role").className = "badge down"; }
  }

  // -- clusters ----------------------------------------------------------
  function scaleMax(threshold, points, value) {
    var m = (threshold || 0) * 1.25;
    if (value !== null && value !== undefined && value > m) m = value;
    if (points) for (var i = 0; i < points.length; i++) if (points[i][1] !== null && points[i][1] > m) m = points[i][1];
    return m > 0 ? m : 1;
  }

  function drawClusters(s) {
    var body = document.querySelector("#clusters tbody");
    clear(body);
    $("no-clusters").hidden = s.clusters.length > 0;
    $("cluster-count").textContent = s.clusters.length ? "(" + s.clusters.length + ")" : "";
    if ((!picked || selected === null) && s.clusters.length) {
      if (selected !== s.clusters[0].name) { selected = s.clusters[0].name; setTimeout(drawSelectedChart, 0); }
    }
    s.clusters.forEach(function (c) {
      var status = c.status;
      var tr = el("tr", { cls: status + (c.name === selected ? " selected" : ""), "data-cluster": c.name, "data-status": status });
      tr.addEventListener("click", function () { selected = c.name; picked = true; drawClusters(state); drawSelectedChart(); });
      var hosts = c.hosts;
      var summary = hosts.total + " host" + (hosts.total === 1 ? "" : "s") + (hosts.failing ? " · " + hosts.failing + " failing" : "");
      tr.appendChild(el("td", null, el("div", { cls: "name" }, el("span", { cls: "dot" }), c.name),
        el("div", { cls: "phone" }, summary)));
      // value against threshold
      var max = scaleMax(c.threshold, null, c.value);
      var bar = el("div", { cls: "bar" });
      var fill = el("i");
      fill.style.width = (c.value === null ? 0 : Math.min(100, 100 * c.value / max)) + "%";
      bar.appendChild(fill);
      if (c.threshold !== null) { var t = el("b", { title: "threshold " + num(c.threshold) }); t.style.left = "calc(" + (100 * c.threshold / max) + "% - 1px)"; bar.appendChild(t); }
      if (c.resume_threshold !== null) { var r = el("u", { title: "resume below " + num(c.resume_threshold) }); r.style.left = "calc(" + (100 * c.resume_threshold / max) + "% - 1px)"; bar.appendChild(r); }
      var cell = el("td", null, bar, el("div", { cls: "vals" }, el("span", { cls: "v", text: num(c.value) }), el("span", { text: "threshold " + num(c.threshold) })));
      if (c.holding) cell.appendChild(el("div", { cls: "hold", text: "holding until below " + num(c.resume_threshold) }));
      if (c.error) cell.appendChild(el("div", { cls: "note", text: c.error }));
      else if (status === "unknown") cell.appendChild(el("div", { cls: "note", text: "not probed by this node" }));
      tr.appendChild(cell);
      tr.appendChild(el("td", { cls: "age r", text: age(c.age_ms) }));
      var chips = el("div", { cls: "chips" }, el("span", { cls: "chip", text: hosts.counted + "/" + hosts.total + " counted" }));
      if (hosts.ignored) chips.appendChild(el("span", { cls: "chip mid", text: hosts.ignored + " ignored" }));
      if (hosts.skipped) chips.appendChild(el("span", { cls: "chip mid", text: hosts.skipped + " skipped" }));
      if (hosts.failing) chips.appendChild(el("span", { cls: "chip bad", text: hosts.failing + " failing" }));
      tr.appendChild(el("td", { cls: "hosts" }, chips));
      tr.appendChild(el("td", null, spark(c)));
      body.appendChild(tr);
    });
  }

  var COLORS = { ok: "#2fb760", warn: "#f0a81c", over: "#e5484d", error: "#e5484d", unknown: "#5b6678" };
  var gradients = 0;

  function zones(parent, c, max, top, height) {
    // A vertical gradient for a line: red above the threshold, amber from
    // the resume threshold (or 80 %) up to it, green below; returns the reference to it.
    var id = "zone" + (gradients++);
    var g = svg("linearGradient", { id: id, gradientUnits: "userSpaceOnUse", x1: 0, y1: top, x2: 0, y2: top + height });
    function at(v) { return Math.max(0, Math.min(1, 1 - v / max)); }
    var stops = [];
    if (c.threshold === null) {
      stops = [[0, COLORS[c.status] || COLORS.unknown], [1, COLORS[c.status] || COLORS.unknown]];
    } else {
      var warn = c.resume_threshold !== null ? c.resume_threshold : 0.8 * c.threshold;
      var t = at(c.threshold), w = at(warn);
      stops = [[0, COLORS.over], [t, COLORS.over], [t, COLORS.warn], [w, COLORS.warn], [w, COLORS.ok], [1, COLORS.ok]];
    }
    stops.forEach(function (s) { g.appendChild(svg("stop", { offset: s[0], "stop-color": s[1] })); });
    var defs = svg("defs", {});
    defs.appendChild(g);
    parent.appendChild(defs);
    return "url(#" + id + ")";
  }

  function series(points, now, w, h, max, pad) {
    // Polylines' point lists, broken where a value is missing.
    var lines = [], cur = [];
    for (var i = 0; i < points.length; i++) {
      var p = points[i];
      if (p[1] === null) { if (cur.length) lines.push(cur); cur = []; continue; }
      var x = w * (1 - (now - p[0]) / WINDOW);
      if (x < 0) continue;
      var y = pad + (h - 2 * pad) * (1 - Math.min(p[1], max) / max);
      cur.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    if (cur.length) lines.push(cur);
    return lines;
  }

  function spark(c) {
    var w = 160, h = 30;
    var points = history[c.name] || [];
    var max = scaleMax(c.threshold, points, c.value);
    var s = svg("svg", { "class": "spark", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none", role: "img", "aria-label": c.name + " over 15 minutes" });
    if (c.threshold !== null) {
      var ty = 2 + (h - 4) * (1 - c.threshold / max);
      s.appendChild(svg("line", { x1: 0, x2: w, y1: ty, y2: ty, stroke: "#56627a", "stroke-dasharray": "3 3", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }));
    }
    var stroke = zones(s, c, max, 2, h - 4);
    series(points, serverNow(), w, h, max, 2).forEach(function (line) {
      s.appendChild(svg("polyline", { points: line.join(" "), fill: "none", stroke: stroke, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
    });
    return s;
  }

  function drawSelectedChart() {
    var box = $("chart");
    var c = null;
    if (state) state.clusters.forEach(function (x) { if (x.name === selected) c = x; });
    clear(box);
    if (!c) return;
    var w = Math.max(280, box.clientWidth || 600), h = box.clientWidth < 500 ? 160 : 200;
    var left = 44, bottom = 20, top = 8;
    var pw = w - left - 8, ph = h - top - bottom;
    var points = history[c.name] || [];
    var max = scaleMax(c.threshold, points, c.value);
    var s = svg("svg", { viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": c.name + " over 15 minutes" });
    s.style.height = h + "px";
    var g = svg("g", { transform: "translate(" + left + "," + top + ")" });
    s.appendChild(g);
    [0, 0.5, 1].forEach(function (f) {
      var y = ph * (1 - f);
      g.appendChild(svg("line", { x1: 0, x2: pw, y1: y, y2: y, stroke: "#232c38" }));
      var t = svg("text", { x: -6, y: y + 4, "text-anchor": "end" }); t.textContent = num(max * f); g.appendChild(t);
    });
    [15, 10, 5, 0].forEach(function (m) {
      var x = pw * (1 - m * 60 / WINDOW);
      var t = svg("text", { x: x, y: ph + 15, "text-anchor": m === 0 ? "end" : m === 15 ? "start" : "middle" });
      t.textContent = m === 0 ? "now" : "−" + m + " min"; g.appendChild(t);
    });
    function hline(v, color, label) {
      var y = ph * (1 - v / max);
      g.appendChild(svg("line", { x1: 0, x2: pw, y1: y, y2: y, stroke: color, "stroke-dasharray": "5 4" }));
      var t = svg("text", { x: 4, y: y - 4 }); t.textContent = label; t.setAttribute("fill", color); g.appendChild(t);
    }
    if (c.threshold !== null) hline(c.threshold, "#c5ccd6", "threshold " + num(c.threshold));
    if (c.resume_threshold !== null) hline(c.resume_threshold, "#f0a81c", "resume " + num(c.resume_threshold));
    var stroke = zones(g, c, max, 0, ph);
    series(points, serverNow(), pw, ph, max, 0).forEach(function (line) {
      g.appendChild(svg("polyline", { points: line.join(" "), fill: "none", stroke: stroke, "stroke-width": 2 }));
    });
    if (!points.length) {
      var t = svg("text", { x: pw / 2, y: ph / 2, "text-anchor": "middle" });
      t.textContent = state && state.is_leader ? "collecting…" : "no history on this node";
      g.appendChild(t);
    }
    box.appendChild(s);
  }

  function showDetail(c) {
    $("detail").hidden = false;
    $("detail-name").textContent = c.name;
    var inv = c.inventory || {};
    $("detail-sub").textContent = (inv.source ? inv.source + " inventory" : "") + (c.holding ? " · holding" : "");
    drawSelectedChart();
    var body = document.querySelector("#hosts tbody");
    clear(body);
    var hosts = c.hosts || [];
    hosts.forEach(function (x) {
      var why = x.why || x.error || (x.skipped_until ? "skipped until " + x.skipped_until : "");
      body.appendChild(el("tr", { "data-host": x.host },
        el("td", { cls: "mono", text: x.host }),
        el("td", null, el("span", { cls: "state " + x.state, text: x.state })),
        el("td", { cls: "r", text: num(x.value) }),
        el("td", { cls: "r", text: age(x.age_ms) }),
        el("td", { cls: "why note", text: why })));
    });
    var none = $("no-hosts");
    none.hidden = hosts.length > 0;
    none.textContent = state && state.is_leader ? "No hosts yet." : "Host states are known only to the leader, which probes.";
  }

  // -- raft, apps, audit -------------------------------------------------
  function drawRaft(s) {
    $("backend").textContent = "· " + s.backend + " · " + s.members.length + " member" + (s.members.length === 1 ? "" : "s");
    var body = document.querySelector("#members tbody");
    clear(body);
    s.members.forEach(function (m) {
      var reach = m.self ? "this node" : m.reachable === null ? "unknown" : m.reachable ? "reachable" : "unreachable";
      var dot = m.self || m.reachable ? "ok" : m.reachable === null ? "" : "over";
      body.appendChild(el("tr", { "data-member": m.id },
        el("td", null, el("span", { cls: "dot " + dot, title: reach })),
        el("td", { cls: "mono" }, m.url ? link(m.url, m.id) : m.id),
        el("td", { cls: "r" }, m.leader ? el("span", { cls: "badge leader", text: "leader" }) : el("span", { cls: "dim", text: reach }))));
    });
    var list = $("changes");
    clear(list);
    s.leadership_changes.slice(0, 5).forEach(function (c) {
      list.appendChild(el("li", null, clock(c.time_unix) + " ", el("span", { cls: "mono", text: c.leader || "no leader" }),
        c.term === null ? "" : " · term " + c.term));
    });
  }

  function drawThrottles() {
    var list = $("throttles");
    clear(list);
    var s = state;
    if (!s) return;
    var elapsed = (performance.now() - stateAt) / 1000;
    s.throttles.forEach(function (t) {
      var left = t.expires_in_s === null ? null : t.expires_in_s - elapsed;
      var label = t.app + (t.store ? " on " + t.store : "");
      var detail = "ratio " + num(t.ratio) + (t.reason ? " · " + t.reason : "") + (t.actor ? " · " + t.actor : "");
      list.appendChild(el("li", { "data-app": t.app },
        el("span", { cls: "t", text: label }),
        el("span", { cls: "countdown", "data-expires": t.expires_at_unix === null ? "" : t.expires_at_unix, text: left === null ? "permanent" : duration(left) }),
        el("span", { cls: "s", text: detail })));
    });
    $("no-throttles").hidden = s.throttles.length > 0;
  }

  function drawRecent(s) {
    var list = $("recent");
    clear(list);
    s.recent_apps.forEach(function (r) {
      var code = r.status === null ? "?" : String(r.status);
      var cls = "code c" + (code === "417" ? "417" : code.charAt(0));
      list.appendChild(el("li", { "data-app": r.app },
        el("span", { cls: "t", text: r.app }), el("span", { cls: cls, text: code }),
        el("span", { cls: "s", text: r.remote + " · " + duration(r.ago_s) + " ago" })));
    });
    $("no-recent").hidden = s.recent_apps.length > 0;
  }

  function drawAudit(s) {
    var list = $("audit");
    clear(list);
    var none = $("no-audit");
    if (s.audit === null) { none.textContent = "Restricted (RestrictAuditLog): read it with a token."; none.hidden = false; return; }
    s.audit.forEach(function (a) {
      list.appendChild(el("li", null, el("span", { cls: "t", text: a.route }), el("span", { cls: "dim", text: clock(a.time_unix) }),
        el("span", { cls: "s", text: a.actor + (a.reason ? " · " + a.reason : "") + (a.outcome !== "applied" ? " · " + a.outcome : "") })));
    });
    none.textContent = "Nothing recorded yet.";
    none.hidden = s.audit.length > 0;
  }

  // Countdowns and the freshness line move between answers too.
  setInterval(function () { drawThrottles(); setFresh(); }, 250);
  window.addEventListener("resize", drawSelectedChart);
  poll();
  pollHistory();
  pollDetail();
})();
