// lanegate console: a small single-page app over the public API only.
// The API key lives in sessionStorage (this tab's session), never in a URL.
"use strict";

const KEY = "lanegate.apikey";
const POLL_MS = 2000;
let poller = null;

// ---- DOM and API helpers -------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace an element's children, skipping the null placeholders of optional parts.
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
  lines() {
    if (Array.isArray(this.body.issues)) {
      return this.body.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`);
    }
    return [this.message];
  }
}

async function api(method, path, body) {
  const headers = { apikey: sessionStorage.getItem(KEY) || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("application/json") ? await response.json() : null;
  if (response.status === 401 && path !== "/instances") signOut();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function flash(text) {
  const el = document.getElementById("flash");
  el.textContent = text;
  el.hidden = false;
  setTimeout(() => { el.hidden = true; }, 3000);
}

function errorList(error) {
  return h("ul", { class: "errors", role: "alert" }, error.lines().map((l) => h("li", {}, l)));
}

// Run a form's action; show the API's validation messages under the form.
function submitter(form, action) {
  return async (event) => {
    event.preventDefault();
    form.querySelector(".errors")?.remove();
    const values = Object.fromEntries(new FormData(form).entries());
    try {
      await action(values);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      form.append(errorList(error));
    }
  };
}

function field(label, name, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}

function laneSelect(name = "lane", value = "normal") {
  return h("label", {}, "Lane", h("select", { name },
    ["urgent", "normal", "bulk"].map((l) => h("option", { value: l, selected: l === value }, l))));
}

function capsText(lanes) {
  if (!lanes) return "—";
  return ["normal", "bulk"].filter((l) => lanes[l].perDay)
    .map((l) => `${l} ${lanes[l].usedToday}/${lanes[l].perDay}`).join(" · ") || "no caps";
}

// Why an instance's day caps are reduced (nothing while its health score keeps them whole).
function healthNote(instance) {
  const health = instance.health;
  if (!health || !health.restricted) return null;
  return h("span", { class: "muted health" },
    ` (halved: health ${health.score} under ${health.minScore})`);
}

// Why a waiting message of this instance does not go: it is paused, or not open (and why).
function waitingReason(instance) {
  if (!instance) return null;
  if (instance.pause) return `instance paused: ${instance.pause.reason}`;
  if (instance.state === "open") return null;
  return `instance ${instance.state}${refusal(instance)}`;
}

// The provider's last refusal of an instance that is not open, as a suffix ("" when none).
function refusal(instance) {
  return instance.state !== "open" && instance.lastError ? ` (${instance.lastError.message})` : "";
}

function statusCell(m, instance) {
  const waiting = ["pending", "pending_approval"].includes(m.status) ? waitingReason(instance) : null;
  return [h("span", { class: `status ${m.status}` }, m.status),
    waiting ? h("span", { class: "muted waiting" }, ` — waiting: ${waiting}`) : null];
}

function when(value) {
  return value ? new Date(value).toLocaleString() : "—";
}

// ---- Views -----------------------------------------------------------------

function signIn(view) {
  const form = h("form", { id: "sign-in" },
    field("API key", "apikey", { type: "password", required: true, autocomplete: "off" }),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", submitter(form, async ({ apikey }) => {
    sessionStorage.setItem(KEY, apikey.trim());
    try {
      await api("GET", "/instances");
    } catch (error) {
      sessionStorage.removeItem(KEY);
      throw error;
    }
    location.hash = "#/instances";
  }));
  view.append(h("h1", {}, "Sign in"), h("p", { class: "muted" },
    "Use a tenant API key. It stays in this browser tab only."), form);
}

async function instances(view) {
  const table = h("table", { class: "wide", id: "instances" });
  const form = h("form", { id: "create-instance" },
    field("Instance name ({tenant}__{client}__{label})", "instanceName", { required: true }),
    field("Webhook URL", "webhookUrl", { type: "url", required: true }),
    field("Webhook secret (16+ characters)", "webhookSecret", { type: "password", required: true }),
    h("label", {}, "Provider", h("select", { name: "provider" },
      h("option", { value: "sandbox" }, "sandbox (simulated phone)"))),
    h("button", { type: "submit" }, "Create instance"));
  form.addEventListener("submit", submitter(form, async (values) => {
    await api("POST", "/instance/create", values);
    location.hash = `#/instance/${encodeURIComponent(values.instanceName)}`;
  }));
  view.append(h("h1", {}, "Instances"), table, h("h2", {}, "New instance"), form);

  async function refresh() {
    const [list, stats] = await Promise.all([api("GET", "/instances"), api("GET", "/stats")]);
    const queues = Object.fromEntries(stats.perInstance.map((p) => [p.instanceName, p.queue]));
    const lanes = Object.fromEntries(await Promise.all(list.map((i) =>
      api("GET", `/instance/${encodeURIComponent(i.instanceName)}/lanes`)
        .then((l) => [i.instanceName, l.lanes]))));
    fill(table,
      h("thead", {}, h("tr", {}, ["Instance", "State", "Provider", "Phone", "Queue (u/n/b)",
        "Caps used today"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, list.map((i) => {
        const q = queues[i.instanceName] || { urgent: 0, normal: 0, bulk: 0 };
        return h("tr", { dataset: { instance: i.instanceName } },
          h("td", { "data-label": "Instance" },
            h("a", { href: `#/instance/${encodeURIComponent(i.instanceName)}` }, i.instanceName)),
          h("td", { "data-label": "State" }, h("span", { class: `state ${i.state}` }, i.state),
            refusal(i) ? h("span", { class: "muted refusal" }, refusal(i)) : null),
          h("td", { "data-label": "Provider" }, `${i.provider} (${i.channel})`),
          h("td", { "data-label": "Phone" }, i.phoneNumber || "—"),
          h("td", { "data-label": "Queue" }, `${q.urgent} / ${q.normal} / ${q.bulk}`),
          h("td", { "data-label": "Caps today", class: "caps" }, capsText(lanes[i.instanceName]),
            healthNote(i)));
      })));
  }
  await refresh();
  return refresh;
}

async function instance(view, name) {
  const path = `/instance/${encodeURIComponent(name)}`;
  const status = h("dl", { id: "status" });
  const qr = h("div", { class: "qr", id: "qr" });
  const actions = h("div", { class: "actions" });
  const pairing = h("form", { class: "inline", id: "pairing" },
    field("Phone number for a pairing code", "phoneNumber", { inputmode: "numeric", required: true }),
    h("button", { type: "submit", class: "secondary" }, "Get pairing code"));
  pairing.addEventListener("submit", submitter(pairing, async (values) => {
    const answer = await api("POST", `${path}/pairing-code`, values);
    pairing.querySelector("output")?.remove();
    pairing.append(h("output", { id: "pairing-code" }, answer.pairingCode));
  }));
  const lanes = h("form", { id: "lanes" },
    ...["urgent", "normal", "bulk"].map((lane) => h("fieldset", {}, h("legend", {}, lane),
      field("Min delay (ms)", `${lane}.min`, { type: "number", min: 0 }),
      field("Max delay (ms)", `${lane}.max`, { type: "number", min: 0 }))),
    h("button", { type: "submit" }, "Save lane settings"));
  lanes.addEventListener("submit", submitter(lanes, async (values) => {
    const body = {};
    for (const lane of ["urgent", "normal", "bulk"]) {
      const [min, max] = [values[`${lane}.min`], values[`${lane}.max`]];
      if (min !== "" || max !== "") body[lane] = { delayMs: [Number(min), Number(max)] };
    }
    await api("PATCH", path, { lanes: body });
    flash("Lane settings saved");
  }));
  view.append(h("h1", {}, name), status, qr, actions, h("h2", {}, "Pairing code"), pairing,
    h("h2", {}, "Lane settings"), lanes);

  let provider = null;
  let lastQr = 0;
  async function refresh() {
    const [s, info] = await Promise.all([api("GET", `${path}/status`),
      api("GET", "/instances").then((all) => all.find((i) => i.instanceName === name))]);
    provider = info ? info.provider : provider;
    fill(status,
      h("dt", {}, "State"), h("dd", {}, h("span", { class: `state ${s.state}`, id: "state" }, s.state)),
      h("dt", {}, "Phone"), h("dd", {}, s.phoneNumber || "—"),
      h("dt", {}, "Connected at"), h("dd", {}, when(s.connectedAt)),
      h("dt", {}, "Paused"), h("dd", { id: "pause" }, s.pause
        ? `${s.pause.reason} (by ${s.pause.by}${s.pause.until ? `, until ${when(s.pause.until)}` : ""})`
        : "no"),
      s.lastError ? h("dt", {}, "Last error") : null,
      s.lastError ? h("dd", { class: "errors", id: "last-error" },
        `${s.lastError.code}: ${s.lastError.message}`) : null,
      h("dt", {}, "Queued messages"), h("dd", {}, String(s.messagesQueuedCount)));
    if (s.state === "open") {
      fill(qr);
    } else if (Date.now() - lastQr > 10000) {
      lastQr = Date.now();  // the provider rotates the code; fetch a fresh one every 10 s
      try {
        const code = await api("GET", `${path}/qr`);
        fill(qr, h("p", {}, "Scan with WhatsApp > Linked devices:"),
          h("img", { src: code.qrcode, alt: "QR code to link this number", id: "qr-image" }));
      } catch (error) {
        fill(qr, errorList(error));
      }
    }
    fill(actions,
      provider === "sandbox" && s.state !== "open"
        ? h("button", { type: "button", id: "simulate-scan", onclick: () =>
            api("POST", `/sandbox/${encodeURIComponent(name)}/scan`).then(() => flash("Scanned")) },
          "Simulate a phone scan")
        : null,
      s.pause
        ? h("button", { type: "button", id: "resume-instance", onclick: () =>
            api("POST", `${path}/resume`).then(() => { flash("Resumed"); return refresh(); }) },
          "Resume")
        : h("button", { type: "button", class: "secondary", id: "pause-instance", onclick: () =>
            api("POST", `${path}/pause`, {}).then(() => { flash("Paused"); return refresh(); }) },
          "Pause"),
      s.state !== "close"
        ? h("button", { type: "button", class: "secondary", onclick: () =>
            api("POST", `${path}/logout`).then(() => flash("Logged out")) }, "Log out")
        : null,
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Delete ${name}? Waiting messages are canceled.`)) return;
        await api("DELETE", path);
        location.hash = "#/instances";
      } }, "Delete"));
  }
  await refresh();
  return refresh;
}

// The API pages 10,000 messages deep (25 a page here); the filters reach older ones.
const DEEPEST_PAGE = 10000 / 25;

async function messages(view) {
  const filters = h("form", { class: "inline", id: "filters" },
    h("label", {}, "Status", h("select", { name: "status" }, ["", "pending", "pending_approval",
      "sent", "failed", "canceled", "expired"].map((s) => h("option", { value: s }, s || "any")))),
    field("Instance", "instanceName"),
    field("Search", "search"),
    h("button", { type: "submit", class: "secondary" }, "Filter"));
  const table = h("table", { class: "wide", id: "messages" });
  const pager = h("div", { class: "actions" });
  let page = 1;
  filters.addEventListener("submit", submitter(filters, async () => { page = 1; await refresh(); }));
  view.append(h("h1", {}, "Messages"), filters, table, pager);

  async function refresh() {
    const query = new URLSearchParams({ page: String(page), limit: "25" });
    for (const [k, v] of new FormData(filters).entries()) if (v) query.set(k, v);
    const [result, all] = await Promise.all([api("GET", `/messages?${query}`),
      api("GET", "/instances")]);
    const byName = Object.fromEntries(all.map((i) => [i.instanceName, i]));
    fill(table,
      h("thead", {}, h("tr", {}, ["Created", "To", "Instance", "Lane", "Status", "Text"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, result.data.map((m) => h("tr", { dataset: { message: m.id } },
        h("td", { "data-label": "Created" },
          h("a", { href: `#/message/${encodeURIComponent(m.id)}` }, when(m.createdAt))),
        h("td", { "data-label": "To" }, m.to),
        h("td", { "data-label": "Instance" }, m.instanceName),
        h("td", { "data-label": "Lane" }, m.lane),
        h("td", { "data-label": "Status" }, statusCell(m, byName[m.instanceName])),
        h("td", { "data-label": "Text" }, m.text || "")))));
    fill(pager,
      h("span", { class: "muted" }, `Page ${result.meta.page} of ${Math.max(1, result.meta.pages)}`
        + ` (${result.meta.total} messages)`),
      page > 1 ? h("button", { type: "button", class: "secondary",
        onclick: () => { page -= 1; refresh(); } }, "Newer") : null,
      page < Math.min(result.meta.pages, DEEPEST_PAGE) ? h("button", { type: "button",
        class: "secondary", onclick: () => { page += 1; refresh(); } }, "Older") : null);
  }
  await refresh();
  return refresh;
}

async function message(view, id) {
  const detail = h("div", { id: "message" });
  view.append(h("h1", {}, "Message"), detail);
  async function refresh() {
    const m = await api("GET", `/message/${encodeURIComponent(id)}`);
    const s = await api("GET", `/instance/${encodeURIComponent(m.instanceName)}/status`)
      .catch(() => null);
    const steps = [["queued", m.createdAt], ["sent", m.sentAt], ["delivered", m.deliveredAt],
      ["read", m.readAt]].filter(([, at]) => at);
    fill(detail,
      h("p", {}, `To ${m.to} through ${m.instanceName}, ${m.lane} lane, ${m.type}. Status: `,
        h("span", { class: `status ${m.status}`, id: "message-status" }, m.status),
        statusCell(m, s).slice(1)),
      s && s.channel === "email" ? emailParts(m) : null,
      h("h2", {}, "Timeline"),
      h("ol", { class: "timeline" }, steps.map(([what, at]) => h("li", {}, `${when(at)} — ${what}`))),
      m.error ? h("p", { class: "errors" }, `${m.error.code}: ${m.error.message}`) : null,
      h("div", { class: "actions" }, messageActions(m, refresh)),
      h("h2", {}, "Webhook deliveries"),
      deliveryTable((await api("GET",
        `/webhooks/deliveries?messageId=${encodeURIComponent(id)}&limit=50`)).deliveries, refresh));
  }
  await refresh();
  return refresh;
}

// An e-mail's subject and the MIME parts it is sent as: text, html, one per file.
function emailParts(m) {
  const files = m.attachments || (m.media ? [m.media] : []);
  const parts = [m.text ? "text/plain" : null, m.html ? "text/html" : null,
    ...files.map((f) => `attachment ${f.filename || f.url || f.attachmentId}`)].filter(Boolean);
  return h("dl", { id: "email" },
    h("dt", {}, "Subject"), h("dd", { id: "email-subject" }, m.subject || "(the instance's default)"),
    h("dt", {}, "Parts"), h("dd", { id: "email-parts" }, parts.join(", ") || "none"));
}

function messageActions(m, refresh) {
  const act = (verb, label, cls) => h("button", { type: "button", class: cls, id: `${verb}-message`,
    onclick: () => api("POST", `/message/${encodeURIComponent(m.id)}/${verb}`)
      .then(() => { flash(`${label} done`); return refresh(); })
      .catch((e) => flash(e.message)) }, label);
  if (m.status === "pending_approval") {
    return [act("approve", "Approve"), act("reject", "Reject", "danger")];
  }
  return m.status === "pending" ? [act("cancel", "Cancel", "danger")] : [];
}

function replayButton(delivery, refresh) {
  return h("button", { type: "button", class: "secondary", dataset: { replay: delivery.id },
    onclick: () => api("POST", `/webhooks/deliveries/${encodeURIComponent(delivery.id)}/replay`)
      .then(() => { flash("Replay queued"); return refresh(); })
      .catch((e) => flash(e.message)) }, "Replay");
}

function deliveryTable(deliveries, refresh) {
  if (!deliveries.length) return h("p", { class: "muted" }, "No deliveries.");
  return h("table", { class: "wide", id: "deliveries" },
    h("thead", {}, h("tr", {}, ["Created", "Event", "Instance", "Status", "Attempts", "Last", ""]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, deliveries.map((d) => h("tr", { dataset: { delivery: d.id } },
      h("td", { "data-label": "Created" },
        h("a", { href: `#/delivery/${encodeURIComponent(d.id)}` }, when(d.createdAt))),
      h("td", { "data-label": "Event" }, d.event),
      h("td", { "data-label": "Instance" }, d.instanceName),
      h("td", { "data-label": "Status" }, h("span", { class: `status ${d.status}` }, d.status)),
      h("td", { "data-label": "Attempts" }, String(d.attemptCount)),
      h("td", { "data-label": "Last" }, d.lastError || (d.lastStatusCode ?? "—")),
      h("td", {}, replayButton(d, refresh))))));
}

async function webhooks(view) {
  const filters = h("form", { class: "inline", id: "delivery-filters" },
    h("label", {}, "Status", h("select", { name: "status" }, ["", "dead", "retrying", "pending",
      "delivered"].map((s) => h("option", { value: s }, s || "any")))),
    field("Instance", "instanceName"),
    h("button", { type: "submit", class: "secondary" }, "Filter"));
  const list = h("div", { id: "delivery-list" });
  filters.addEventListener("submit", submitter(filters, async () => { await refresh(); }));
  view.append(h("h1", {}, "Webhook deliveries"), filters, list);
  async function refresh() {
    const query = new URLSearchParams({ limit: "50" });
    for (const [k, v] of new FormData(filters).entries()) if (v) query.set(k, v);
    const page = await api("GET", `/webhooks/deliveries?${query}`);
    fill(list, deliveryTable(page.deliveries, refresh));
  }
  await refresh();
  return refresh;
}

async function delivery(view, id) {
  const detail = h("div", { id: "delivery" });
  view.append(h("h1", {}, "Delivery"), detail);
  async function refresh() {
    const d = await api("GET", `/webhooks/deliveries/${encodeURIComponent(id)}`);
    fill(detail,
      h("p", {}, `${d.event} for ${d.instanceName} to ${d.url}: `,
        h("span", { class: `status ${d.status}`, id: "delivery-status" }, d.status)),
      h("div", { class: "actions" }, replayButton(d, refresh)),
      h("h2", {}, "Attempts"),
      h("table", { class: "wide" },
        h("thead", {}, h("tr", {}, ["At", "Status code", "Duration", "Error"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, d.attempts.map((a) => h("tr", {},
          h("td", { "data-label": "At" }, when(a.at)),
          h("td", { "data-label": "Status code" }, a.statusCode ?? "—"),
          h("td", { "data-label": "Duration" }, `${a.durationMs} ms`),
          h("td", { "data-label": "Error" }, a.error || ""))))),
      h("h2", {}, "Payload"),
      h("pre", {}, JSON.stringify(d.payload, null, 2)));
  }
  await refresh();
  return refresh;
}

async function send(view) {
  const form = h("form", { id: "send-test" },
    h("label", {}, "Instance", h("select", { name: "instanceName", required: true })),
    field("To (digits, with country code)", "to", { inputmode: "numeric", required: true }),
    h("label", {}, "Text (spintax welcome)", h("textarea", { name: "text", required: true, rows: 3 })),
    laneSelect(),
    h("label", {}, h("input", { type: "checkbox", name: "requiresApproval" }), " Hold for approval"),
    h("button", { type: "submit" }, "Send"));
  const result = h("p", { id: "send-result" });
  form.addEventListener("submit", submitter(form, async (values) => {
    const answer = await api("POST", "/message/text",
      { ...values, requiresApproval: values.requiresApproval === "on" });
    fill(result, "Queued: ",
      h("a", { href: `#/message/${encodeURIComponent(answer.id)}`, id: "sent-link" }, answer.id));
  }));
  view.append(h("h1", {}, "Send a test message"), form, result);
  const list = await api("GET", "/instances");
  fill(form.querySelector("select[name=instanceName]"),
    ...list.map((i) => h("option", { value: i.instanceName }, `${i.instanceName} (${i.state})`)));
}

// A file of messages (the /api/queue/template columns): preview its rows, then queue them.
async function importFile(view) {
  const form = h("form", { id: "import-file" },
    h("label", {}, "File (.xlsx or CSV)",
      h("input", { type: "file", name: "file", accept: ".xlsx,.csv", required: true })),
    h("label", {}, "Connector for rows without one",
      h("select", { name: "connectorId" }, h("option", { value: "" }, "—"))),
    h("button", { type: "submit" }, "Preview"));
  const preview = h("div", { id: "import-preview" });
  const upload = async (path) => {
    const body = new FormData(form);
    if (!body.get("connectorId")) body.delete("connectorId");
    const response = await fetch(path, {
      method: "POST", headers: { apikey: sessionStorage.getItem(KEY) || "" }, body,
    });
    const data = await response.json();
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  };
  form.addEventListener("submit", submitter(form, async () => {
    const { rows } = await upload("/api/queue/import/preview");
    const bad = rows.filter((r) => r.issues.length).length;
    const queue = h("button", { type: "button", id: "import-queue", disabled: bad > 0 },
      `Queue ${rows.length} messages`);
    queue.addEventListener("click", async () => {
      preview.querySelector(".errors")?.remove();
      try {
        const answer = await upload("/api/queue/import");
        fill(preview, h("p", { id: "import-result" }, `Queued ${answer.count} messages.`));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        preview.append(errorList(error));
      }
    });
    fill(preview,
      h("p", { id: "import-summary" },
        `${rows.length} rows, ${bad} with problems${bad ? ": fix the file and preview again" : ""}.`),
      h("table", { class: "wide" },
        h("thead", {}, h("tr", {}, ["Row", "Connector", "To", "Message", "Problems"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, rows.map((r) => h("tr", { class: r.issues.length ? "row-problem" : null },
          h("td", { "data-label": "Row" }, r.row),
          h("td", { "data-label": "Connector" }, r.fields.connectorId || "—"),
          h("td", { "data-label": "To" }, r.fields.to || "—"),
          h("td", { "data-label": "Message" }, r.fields.message || "—"),
          h("td", { "data-label": "Problems" },
            r.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")))))),
      h("div", { class: "actions" }, queue));
  }));
  view.append(h("h1", {}, "Import messages"),
    h("p", { class: "muted" }, "Columns as in ",
      h("a", { href: "#/import", id: "template-link" }, "the template"), "."),
    form, preview);
  view.querySelector("#template-link").addEventListener("click", async (event) => {
    event.preventDefault();
    const response = await fetch("/api/queue/template",
      { headers: { apikey: sessionStorage.getItem(KEY) || "" } });
    const link = h("a", { href: URL.createObjectURL(await response.blob()),
      download: "template_mensagens.xlsx" });
    link.click();
  });
  const list = await api("GET", "/instances");
  form.querySelector("select[name=connectorId]").append(
    ...list.map((i) => h("option", { value: i.instanceName }, i.instanceName)));
}

// ---- Router ---------------------------------------------------------------

const ROUTES = [
  [/^#\/instances$/, instances],
  [/^#\/instance\/(.+)$/, instance],
  [/^#\/messages$/, messages],
  [/^#\/message\/(.+)$/, message],
  [/^#\/send$/, send],
  [/^#\/webhooks$/, webhooks],
  [/^#\/delivery\/(.+)$/, delivery],
  [/^#\/import$/, importFile],
];

function signOut() {
  sessionStorage.removeItem(KEY);
  location.hash = "#/sign-in";
}

async function route() {
  clearInterval(poller);
  const view = document.getElementById("view");
  fill(view);
  const signedIn = Boolean(sessionStorage.getItem(KEY));
  document.getElementById("nav").hidden = !signedIn;
  if (!signedIn) return signIn(view);
  const hash = location.hash || "#/instances";
  for (const [pattern, render] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      const refresh = await render(view, ...match.slice(1).map(decodeURIComponent));
      if (refresh) poller = setInterval(() => refresh().catch(() => {}), POLL_MS);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      view.append(errorList(error));
    }
    return;
  }
  location.hash = "#/instances";
}

window.addEventListener("hashchange", route);
document.getElementById("sign-out").addEventListener("click", signOut);
// After every deferred script: the views of the other console files add their routes first.
document.addEventListener("DOMContentLoaded", route);
