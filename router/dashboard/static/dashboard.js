// The signalroute dashboard: reads /dashboard/api/* and draws it with Chart.js.
// Data is only ever inserted as text (textContent), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "signalroute.dashboard.token";
  const PALETTE = [
    "#2f6fdb", "#e8833a", "#3a9e5b", "#c2413b", "#8a5cc7", "#8c6d4f", "#d46fb3",
    "#6b7280", "#b5a22c", "#2aa5b8", "#1f4e9c", "#f2b134", "#5fbf7a", "#e06c75",
  ];
  const charts = {};
  const state = { arms: [], stages: [], colours: {}, policies: [], selected: null };

  // --- access --------------------------------------------------------------------------

  function token() {
    const fragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (fragment) {
      sessionStorage.setItem(TOKEN_KEY, fragment);
      history.replaceState(null, "", window.location.pathname);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  class Unauthorized extends Error {}

  async function api(path) {
    const headers = { Accept: "application/json" };
    const secret = token();
    if (secret) headers.Authorization = "Bearer " + secret;
    const response = await fetch("/dashboard/api/" + path, { headers });
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}));
      throw new Unauthorized((body.error && body.error.message) || "not signed in");
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const message = (body.error && body.error.message) || response.statusText;
      throw new Error(path + ": " + message);
    }
    return response.json();
  }

  function showLogin(message) {
    document.getElementById("login").hidden = false;
    document.getElementById("content").hidden = true;
    document.getElementById("login-error").textContent = message || "";
  }

  // --- small helpers -------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      if (cell instanceof Node) {
        const td = document.createElement("td");
        td.appendChild(cell);
        tr.appendChild(td);
      } else if (cell && typeof cell === "object") {
        tr.appendChild(el("td", cell.text, cell.className));
      } else {
        tr.appendChild(el("td", cell));
      }
    }
    return tr;
  }

  function fill(tableId, rows, empty) {
    const body = document.querySelector("#" + tableId + " tbody");
    if (!rows.length && empty) {
      const tr = el("tr", null, "empty");
      const td = el("td", empty);
      td.colSpan = document.querySelectorAll("#" + tableId + " thead th").length;
      tr.appendChild(td);
      rows = [tr];
    }
    body.replaceChildren(...rows);
  }

  function num(value, digits) {
    if (value === null || value === undefined) return { text: "–", className: "num" };
    return { text: Number(value).toFixed(digits), className: "num" };
  }

  function usd(value) {
    if (value === null || value === undefined) return { text: "–", className: "num" };
    return { text: Number(value).toPrecision(3), className: "num" };
  }

  function pct(value) {
    if (value === null || value === undefined) return { text: "–", className: "num" };
    return { text: (100 * value).toFixed(1) + "%", className: "num" };
  }

  function meter(ratio) {
    const outer = el("span", null, "meter" + (ratio >= 1 ? " over" : ""));
    const inner = el("span");
    inner.style.width = Math.min(100, 100 * ratio).toFixed(1) + "%";
    outer.appendChild(inner);
    const wrap = el("span");
    wrap.appendChild(outer);
    wrap.appendChild(el("span", (100 * ratio).toFixed(1) + "%"));
    return wrap;
  }

  function colour(arm) {
    if (!(arm in state.colours)) {
      state.colours[arm] = PALETTE[Object.keys(state.colours).length % PALETTE.length];
    }
    return state.colours[arm];
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    const canvas = document.getElementById(id);
    config.options = Object.assign(
      {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { labels: { boxWidth: 10, font: { size: 11 } } } },
      },
      config.options || {}
    );
    charts[id] = new Chart(canvas, config);
  }

  function timeLabel(iso, bucketS) {
    const date = new Date(iso);
    const hm = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (bucketS < 60) return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    if (bucketS >= 3600) return date.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm;
    return hm;
  }

  // --- traffic -------------------------------------------------------------------------

  let traffic = null;

  async function loadTraffic() {
    const minutes = document.getElementById("traffic-minutes").value;
    traffic = await api("traffic?minutes=" + encodeURIComponent(minutes));
    drawTraffic();
  }

  function drawTraffic() {
    const stage = document.getElementById("traffic-stage").value;
    const step = traffic.bucket_s * 1000;
    const first = Math.floor(Date.parse(traffic.since) / step) * step;
    const last = Math.floor(Date.parse(traffic.until) / step) * step;
    const buckets = [];
    for (let t = first; t <= last; t += step) buckets.push(t);
    const rows = traffic.rows.filter((r) => r.stage === stage);
    const arms = [...new Set(rows.map((r) => r.arm))];
    const index = new Map(buckets.map((t, i) => [t, i]));
    const series = (field) =>
      arms.map((arm) => {
        const values = buckets.map(() => null);
        for (const r of rows) {
          if (r.arm !== arm) continue;
          const i = index.get(Date.parse(r.bucket));
          if (i !== undefined) values[i] = r[field];
        }
        return { arm, values };
      });
    const labels = buckets.map((t) => timeLabel(new Date(t).toISOString(), traffic.bucket_s));
    const total = rows.reduce((sum, r) => sum + r.decisions, 0);
    document.getElementById("traffic-note").textContent =
      total + " decisions of stage " + stage + " in " + buckets.length + " buckets of " +
      traffic.bucket_s + " s";
    const bars = (field) =>
      series(field).map((s) => ({
        label: s.arm, data: s.values.map((v) => v || 0), backgroundColor: colour(s.arm),
      }));
    const lines = (field) =>
      series(field).map((s) => ({
        label: s.arm, data: s.values, borderColor: colour(s.arm), backgroundColor: colour(s.arm),
        spanGaps: true, pointRadius: 2,
      }));
    const stacked = { x: { stacked: true }, y: { stacked: true, beginAtZero: true } };
    // Hovering a bar shows the arm's share of its bucket's decisions.
    const share = {
      callbacks: {
        label: (item) => {
          const inBucket = item.chart.data.datasets.reduce((sum, d) => sum + (d.data[item.dataIndex] || 0), 0);
          const pctText = inBucket ? ((100 * item.raw) / inBucket).toFixed(0) + "%" : "–";
          return item.dataset.label + ": " + item.raw + " (" + pctText + ")";
        },
      },
    };
    draw("chart-decisions", {
      type: "bar",
      data: { labels, datasets: bars("decisions") },
      options: { scales: stacked, plugins: { tooltip: share, legend: { labels: { boxWidth: 10, font: { size: 11 } } } } },
    });
    draw("chart-reward", { type: "line", data: { labels, datasets: lines("reward") }, options: { scales: { y: { min: 0, max: 1 } } } });
    draw("chart-cost", { type: "bar", data: { labels, datasets: bars("cost_usd") }, options: { scales: stacked } });
    draw("chart-latency", { type: "line", data: { labels, datasets: lines("latency_ms") }, options: { scales: { y: { beginAtZero: true } } } });
  }

  // --- policies ------------------------------------------------------------------------

  async function loadPolicies() {
    const window_ = document.getElementById("policy-window").value;
    const body = await api("policies?window=" + encodeURIComponent(window_));
    state.policies = body.policies;
    const list = document.getElementById("policy-list");
    list.replaceChildren(...body.policies.map(policyBlock));
    for (const policy of body.policies) if (policy.decisions > 0) drawPolicy(policy, "");
  }

  function exploration(config) {
    if (config.exploration === "epsilon") return "epsilon-greedy, ε " + config.epsilon;
    if (config.exploration === "squarecb") return "SquareCB, γ scale " + config.gamma_scale + ", ε " + config.epsilon;
    return "softmax, λ " + config.softmax_lambda + ", ε " + config.epsilon;
  }

  function policyBlock(policy) {
    const block = el("div", null, "policy");
    block.dataset.stage = policy.stage;
    const head = el("div", null, "policy-head");
    head.appendChild(el("h3", "stage " + policy.stage));
    head.appendChild(el("span", policy.updates + " updates"));
    head.appendChild(el("span", "snapshot " + (policy.snapshot_version === null ? "none yet" : "v" + policy.snapshot_version)));
    head.appendChild(el("span", exploration(policy.exploration)));
    const recent = policy.recent_reward;
    head.appendChild(el("span", "mean reward " + (recent.mean === null ? "–" : recent.mean.toFixed(3)) +
      " over " + recent.decisions + " rewarded of the last " + policy.decisions + " decisions"));
    const picker = el("select");
    picker.setAttribute("aria-label", "context group of stage " + policy.stage);
    picker.appendChild(new Option("all contexts (" + policy.decisions + ")", ""));
    for (const group of policy.groups) {
      picker.appendChild(new Option(group.group + " (" + group.decisions + ")", group.group));
    }
    picker.addEventListener("change", () => drawPolicy(policy, picker.value));
    const label = el("label", "contexts ");
    label.appendChild(picker);
    head.appendChild(label);
    block.appendChild(head);
    if (policy.decisions === 0) {
      block.appendChild(el("p", "No decisions of this stage in the window yet.", "note"));
      return block;
    }
    const body = el("div", null, "policy-body");
    const wrap = el("div", null, "table-wrap");
    const table = el("table");
    table.id = "policy-table-" + policy.stage;
    const thead = el("thead");
    const tr = el("tr");
    for (const name of ["arm", "routed", "share", "probability now", "estimated reward", "observed reward", "rewarded"]) {
      tr.appendChild(el("th", name));
    }
    thead.appendChild(tr);
    table.appendChild(thead);
    table.appendChild(el("tbody"));
    wrap.appendChild(table);
    body.appendChild(wrap);
    const chart = el("div", null, "chart");
    const canvas = el("canvas");
    canvas.id = "chart-policy-" + policy.stage;
    chart.appendChild(canvas);
    body.appendChild(chart);
    block.appendChild(body);
    return block;
  }

  function drawPolicy(policy, groupName) {
    const group = groupName ? policy.groups.find((g) => g.group === groupName) : null;
    const arms = group ? group.arms : policy.arms;
    fill("policy-table-" + policy.stage, arms.map((a) => {
      const tr = row([
        a.arm, { text: a.decisions, className: "num" }, pct(a.share), pct(a.probability),
        num(a.estimated_reward, 3), num(a.observed_reward, 3), { text: a.rewarded, className: "num" },
      ]);
      tr.dataset.arm = a.arm;
      return tr;
    }));
    const shown = arms.filter((a) => a.eligible > 0 || a.decisions > 0);
    draw("chart-policy-" + policy.stage, {
      type: "bar",
      data: {
        labels: shown.map((a) => a.arm),
        datasets: [
          { label: "estimated reward", data: shown.map((a) => a.estimated_reward), backgroundColor: "#2f6fdb" },
          { label: "observed reward", data: shown.map((a) => a.observed_reward), backgroundColor: "#e8833a" },
          { label: "probability now", data: shown.map((a) => a.probability), backgroundColor: "#9aa3b2" },
        ],
      },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
  }

  // --- requests and traces -------------------------------------------------------------

  async function loadRequests() {
    const body = await api("requests?limit=50");
    fill("request-table", body.requests.map((r) => {
      const tr = row([
        new Date(r.created_at).toLocaleTimeString(), r.tenant, r.status, r.model || "–",
        usd(r.cost_usd), num(r.latency_ms, 0), { text: r.decisions, className: "num" },
        num(r.reward, 3), { text: r.preview, className: "text" },
      ]);
      tr.className = "clickable" + (r.id === state.selected ? " selected" : "");
      tr.dataset.request = r.id;
      tr.tabIndex = 0;
      tr.addEventListener("click", () => openTrace(r.id));
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") openTrace(r.id); });
      return tr;
    }), "no requests yet");
  }

  // The context's namespaces, as the router names its signal families.
  const FAMILIES = {
    Q: "query", H: "historical", O: "output", I: "cut run", C: "component", G: "judge gate",
    A: "arm", S: "arm system", K: "arm history",
  };

  function family(namespace) {
    return namespace + " " + (FAMILIES[namespace] || "");
  }

  function signalRows(step, decision) {
    const rows = [];
    const context = decision.context || {};
    for (const [namespace, values] of Object.entries(context.shared || {})) {
      for (const [name, value] of Object.entries(values)) rows.push([family(namespace), name, value]);
    }
    const chosen = (context.arms || []).find((a) => a.arm === decision.arm);
    if (chosen) {
      for (const [namespace, values] of Object.entries(chosen.namespaces)) {
        for (const [name, value] of Object.entries(values)) rows.push([family(namespace), name, value]);
      }
    }
    return rows.map(([namespace, name, value]) => row([
      step, decision.stage, namespace, name,
      typeof value === "number" ? { text: +value.toFixed(4), className: "num" } : { text: value, className: "text" },
    ]));
  }

  async function openTrace(id) {
    state.selected = id;
    for (const tr of document.querySelectorAll("#request-table tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.request === id);
    }
    const trace = await api("requests/" + encodeURIComponent(id));
    const panel = document.getElementById("trace");
    panel.hidden = false;
    document.getElementById("trace-id").textContent = trace.id;
    const meta = document.getElementById("trace-meta");
    meta.replaceChildren();
    const facts = [
      ["tenant", trace.tenant], ["status", trace.status], ["answered by", trace.model || "–"],
      ["cost (USD)", trace.cost_usd === null ? "–" : trace.cost_usd.toPrecision(3)],
      ["latency (ms)", trace.latency_ms === null ? "–" : trace.latency_ms.toFixed(0)],
      ["created", new Date(trace.created_at).toLocaleString()],
    ];
    if (trace.error) facts.push(["error", trace.error]);
    for (const [name, value] of facts) {
      meta.appendChild(el("dt", name));
      meta.appendChild(el("dd", value));
    }
    const decisions = trace.decisions;
    fill("trace-decisions", decisions.map((d, i) => row([
      i + 1, d.stage, d.arm, num(d.probability, 3), d.outcome || "–", usd(d.cost_usd),
      num(d.latency_ms, 0),
      d.rewards.map((w) => w.value.toFixed(3) + " (" + w.source + ")").join(", ") || "–",
      d.policy_version,
    ])));
    const arms = [...new Set(decisions.flatMap((d) => Object.keys(d.pmf)))];
    draw("chart-pmf", {
      type: "bar",
      data: {
        labels: arms,
        datasets: decisions.map((d, i) => ({
          label: "#" + (i + 1) + " " + d.stage + " → " + d.arm,
          data: arms.map((a) => d.pmf[a] || 0),
          backgroundColor: PALETTE[i % PALETTE.length],
        })),
      },
      options: { scales: { y: { min: 0, max: 1 } } },
    });
    fill("trace-masked", decisions.flatMap((d, i) =>
      Object.entries(d.masked || {}).map(([arm, reason]) => row([i + 1, d.stage, arm, { text: reason, className: "text" }]))),
      "no arm was masked");
    fill("trace-signals", decisions.flatMap((d, i) => signalRows(i + 1, d)), "no signals logged");
    const extra = trace.trace || {};
    fill("trace-components", (extra.components || []).map((c) => row([c.index, c.kind, c.arm, { text: c.chars, className: "num" }])),
      "not recorded for this request");
    document.getElementById("trace-assessment").textContent =
      extra.assessment ? JSON.stringify(extra.assessment, null, 2) : "not recorded for this request";
    document.getElementById("trace-details").textContent = JSON.stringify(
      decisions.map((d, i) => ({ step: i + 1, stage: d.stage, details: d.details })), null, 2);
  }

  // --- spend, health, offline ----------------------------------------------------------

  async function loadSpend() {
    const body = await api("spend");
    const budgets = [];
    budgets.push("tenant budget: " + (body.tenant_budget_usd === null ? "none" : "$" + body.tenant_budget_usd));
    budgets.push("session budget: " + (body.session_budget_usd === null ? "none" : "$" + body.session_budget_usd));
    document.getElementById("budgets").textContent = budgets.join(" · ");
    const used = (ratio) => (ratio === null ? "no budget" : meter(ratio));
    fill("spend-tenants", body.tenants.map((s) => row([s.tenant, { text: s.requests, className: "num" }, usd(s.cost_usd), used(s.budget_used)])), "no spend yet");
    fill("spend-sessions", body.sessions.map((s) => row([s.tenant, s.session, { text: s.requests, className: "num" }, usd(s.cost_usd), used(s.budget_used)])),
      "no request named a session");
  }

  async function loadHealth() {
    const body = await api("health");
    fill("health-table", body.arms.map((a) => {
      const tr = row([
        a.arm, { text: a.circuit, className: "circuit-" + (a.available ? "closed" : "open") },
        pct(a.error_rate), { text: a.calls_in_window, className: "num" }, num(a.latency_p95_ms, 0),
        num(a.latency_ewma_ms, 0), { text: a.in_flight, className: "num" },
        a.rate_limit_headroom === null ? "–" : pct(a.rate_limit_headroom),
      ]);
      tr.dataset.arm = a.arm;
      return tr;
    }));
  }

  async function loadOffline() {
    const body = await api("offline");
    const note = document.getElementById("offline-note");
    const table = document.getElementById("offline-table");
    if (!body.available) {
      note.textContent = body.reason;
      table.hidden = true;
      return;
    }
    const report = body.report;
    note.textContent = body.path + ", written " + new Date(body.written_at).toLocaleString() + ": " +
      report.n_logged + " logged decisions" + (report.stage ? " (stage " + report.stage + ")" : "") +
      (typeof report.logged_reward === "number" ? ", logged reward " + report.logged_reward.toFixed(3) : "") +
      (body.skipped ? " · skipped " + body.skipped : "");
    table.hidden = false;
    fill("offline-table", report.candidates.map((c) => {
      const estimates = Object.entries(c.estimates).map(([name, e]) =>
        name.toUpperCase() + " " + (e.value === null ? "n/a" : e.value.toFixed(3)) +
        (e.low === null ? "" : " [" + e.low.toFixed(3) + ", " + e.high.toFixed(3) + "]")).join("; ");
      const share = Object.entries(c.arm_share).map(([arm, s]) => arm + " " + (100 * s).toFixed(0) + "%").join(", ");
      return row([c.name, { text: estimates, className: "text" }, num(c.effective_sample_size, 1),
        { text: share, className: "text" }, { text: c.support.warnings.join(" ") || "–", className: "text" }]);
    }));
  }

  // --- the page ------------------------------------------------------------------------

  async function load() {
    const error = document.getElementById("error");
    error.hidden = true;
    try {
      if (!token()) {
        const access = await api("access");
        if (access.auth !== "none") {
          showLogin("");
          return;
        }
      }
      const overview = await api("overview");
      document.getElementById("login").hidden = true;
      document.getElementById("content").hidden = false;
      document.getElementById("scope").textContent =
        overview.scope === null ? "all tenants" : "tenant " + overview.scope;
      state.arms = overview.arms.map((a) => a.arm);
      state.arms.forEach(colour);
      const stagePicker = document.getElementById("traffic-stage");
      if (!stagePicker.options.length) {
        for (const stage of overview.stages) stagePicker.appendChild(new Option(stage, stage));
      }
      await Promise.all([loadTraffic(), loadPolicies(), loadRequests(), loadSpend(), loadHealth(), loadOffline()]);
      if (state.selected) await openTrace(state.selected);
      document.body.dataset.loaded = "true";
    } catch (exc) {
      if (exc instanceof Unauthorized) {
        showLogin(token() ? exc.message : "");
        return;
      }
      error.textContent = String(exc.message || exc);
      error.hidden = false;
    }
  }

  function start() {
    document.getElementById("refresh").addEventListener("click", load);
    document.getElementById("traffic-minutes").addEventListener("change", () => loadTraffic().catch(report));
    document.getElementById("traffic-stage").addEventListener("change", () => traffic && drawTraffic());
    document.getElementById("policy-window").addEventListener("change", () => loadPolicies().catch(report));
    document.getElementById("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
      load();
    });
    load();
  }

  function report(exc) {
    const error = document.getElementById("error");
    error.textContent = String(exc.message || exc);
    error.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", start);
})();
