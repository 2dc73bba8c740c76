// lanegate console: signing in with e-mail and password, and the account, keys and users
// views. Loaded after console.js, whose helpers (h, fill, api, submitter, field, when...) it uses.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ROLES = ["admin", "member", "viewer"];
// A limit this used (as a share of it) is shown as near.
const NEAR_SHARE = 0.8;

// ---- Signing in ------------------------------------------------------------

// The e-mail and password form of the sign-in view, and the invited person's one.
function passwordSignIn() {
  const form = h("form", { id: "password-sign-in" },
    field("E-mail", "email", { type: "email", required: true, autocomplete: "username" }),
    field("Password", "password", { type: "password", required: true,
      autocomplete: "current-password" }),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", submitter(form, async ({ email, password }) => {
    const tokens = await api("POST", "/auth/login", { email, password }, true);
    keepSession(tokens);
    // Managing keys and users is an admin's (the API lets the other roles only read the lists).
    const links = tokens.user.role === "admin" ? ["keys", "users"] : [];
    sessionStorage.setItem(CAN, JSON.stringify(links));
    location.hash = "#/account";
  }));
  return h("div", {}, form, acceptInvitation());
}

// The admin links an API key may use: those whose lists it can read.
async function linksForKey() {
  const links = [];
  for (const [link, path] of [["keys", "/account/keys"], ["users", "/account/users"]]) {
    try {
      await api("GET", path, undefined, true);
      links.push(link);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) throw error;
    }
  }
  return links;
}

// Show the nav links the credential may use, and who is signed in.
function showAccountLinks() {
  for (const link of document.querySelectorAll("#nav [data-can]")) {
    link.hidden = !allowedLinks().includes(link.dataset.can);
  }
  const user = session()?.user;
  document.getElementById("signed-in-as").textContent = user ? `${user.email} (${user.role})` : "";
}

function allowedLinks() {
  return JSON.parse(sessionStorage.getItem(CAN) || "[]");
}

// Keys and users are an admin's pages: the others get the console's refusal, not a half page.
function requireLink(link) {
  if (!allowedLinks().includes(link)) {
    throw new ApiError(403, { error: `Only an admin (or a key that can read them) sees ${link}` });
  }
}

// An invited person sets their password with the token the admin passed on.
function acceptInvitation() {
  const form = h("form", { id: "accept-invitation" },
    field("Invitation token", "token", { required: true, autocomplete: "off" }),
    field("New password (12+ characters)", "password", { type: "password", required: true,
      minlength: 12, autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Set password"));
  const done = h("p", { id: "accepted" });
  form.addEventListener("submit", submitter(form, async (values) => {
    const user = await api("POST", "/auth/accept", values, true);
    form.reset();
    fill(done, `Password set for ${user.email}: sign in above.`);
  }));
  return h("details", { id: "invitation" }, h("summary", {}, "Have an invitation?"), form, done);
}

// ---- Account: info, limits and usage ---------------------------------------

async function account(view) {
  const [info, limits, usage] = await Promise.all([api("GET", "/account"),
    api("GET", "/account/limits"), api("GET", "/account/usage?granularity=day")]);
  const states = Object.entries(info.counts.instancesByState)
    .map(([state, n]) => `${n} ${state}`).join(", ");
  view.append(h("h1", {}, "Account"),
    h("dl", { id: "account-info" },
      h("dt", {}, "Name"), h("dd", { id: "account-name" }, info.name),
      h("dt", {}, "Tenant id"), h("dd", {}, info.id),
      h("dt", {}, "Plan"), h("dd", { id: "account-plan" }, info.plan ? info.plan.name : "none"),
      h("dt", {}, "Created"), h("dd", {}, when(info.createdAt)),
      h("dt", {}, "Instances"),
      h("dd", { id: "account-instances" },
        `${info.counts.instances}${states ? ` (${states})` : ""}`),
      h("dt", {}, "Contacts"), h("dd", { id: "account-contacts" }, String(info.counts.contacts))),
    h("h2", {}, "Limits"), limitTable(limits),
    h("h2", {}, "Messages per day (UTC), last 30 days"), usageChart(usage.periods),
    usageTable(usage.periods));
}

const LIMIT_NAMES = {
  instances: "Instances",
  messagesToday: "Messages today",
  messagesThisMonth: "Messages this month",
  requestsPerMinute: "Requests per minute (tenant)",
  requestsPerMinutePerKey: "Requests per minute (this key or user)",
  bulkSize: "Messages per bulk",
  attachmentBytes: "Attachment size (bytes)",
  otpSendsPerHourPerNumber: "Codes per hour per number",
  otpLiveCodes: "Codes waiting to be verified",
};

// How close a counted limit is: "over" at or past it, "near" from NEAR_SHARE of it.
function limitState({ limit, used }) {
  if (limit === null || used === null) return null;
  if (used >= limit) return "over";
  return used >= limit * NEAR_SHARE ? "near" : null;
}

function limitTable(limits) {
  return h("table", { class: "wide", id: "limits" },
    h("thead", {}, h("tr", {}, ["Limit", "Used", "Allowed", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, Object.entries(LIMIT_NAMES).map(([name, label]) => {
      const state = limitState(limits[name]);
      return h("tr", { dataset: { limit: name }, class: state ? `limit-${state}` : null },
        h("td", { "data-label": "Limit" }, label),
        h("td", { "data-label": "Used" }, limits[name].used ?? "not counted"),
        h("td", { "data-label": "Allowed" }, limits[name].limit ?? "no limit"),
        h("td", { "data-label": state ? "State" : null, class: "limit-state" },
          { over: "at the limit", near: "near the limit" }[state] || ""));
    })));
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

// Bars of the messages sent each day, with the accepted ones behind them; the table below
// holds the same figures for screen readers.
function usageChart(periods) {
  const [width, height, top, bottom] = [600, 180, 16, 20];
  const most = Math.max(1, ...periods.map((p) => Math.max(p.totals.accepted, p.totals.sent)));
  const step = width / periods.length;
  const bar = (value) => (height - top - bottom) * value / most;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, id: "usage-chart",
    role: "img", "aria-label": "Messages accepted and sent per day; the table below lists them" });
  periods.forEach((p, i) => {
    const x = i * step;
    const base = height - bottom;
    const { accepted, sent } = p.totals;
    chart.append(
      svg("rect", { class: "accepted", x: x + 1, y: base - bar(accepted), width: step - 2,
        height: bar(accepted), "data-day": p.period, "data-value": accepted },
      svg("title", {}, `${p.period}: ${accepted} accepted`)),
      svg("rect", { class: "sent", x: x + step * 0.25, y: base - bar(sent), width: step * 0.5,
        height: bar(sent), "data-day": p.period, "data-value": sent },
      svg("title", {}, `${p.period}: ${sent} sent`)));
    if (sent) chart.append(svg("text", { x: x + step / 2, y: base - bar(sent) - 3 }, String(sent)));
  });
  const [first, last] = [periods[0], periods[periods.length - 1]];
  chart.append(
    svg("line", { x1: 0, x2: width, y1: height - bottom, y2: height - bottom }),
    svg("text", { x: 0, y: height - 4, class: "axis start" }, first.period),
    svg("text", { x: width, y: height - 4, class: "axis end" }, last.period));
  return h("figure", { class: "usage" }, chart,
    h("figcaption", { class: "muted" }, h("span", { class: "key sent" }), " sent ",
      h("span", { class: "key accepted" }), " accepted"));
}

function usageTable(periods) {
  const columns = ["accepted", "sent", "delivered", "read", "failed", "canceled"];
  // Not a "wide" table: thirty days as cards would fill a phone; it scrolls sideways instead.
  return h("div", { class: "scroll" }, h("table", { id: "usage" },
    h("caption", { class: "muted" }, "Messages per day, newest first"),
    h("thead", {}, h("tr", {}, ["Day", ...columns].map((t) => h("th", {}, t)))),
    h("tbody", {}, [...periods].reverse().map((p) => h("tr", { dataset: { day: p.period } },
      h("td", { "data-label": "Day" }, p.period),
      columns.map((c) => h("td", { "data-label": c, dataset: { count: c } },
        String(p.totals[c]))))))));
}

// ---- Keys ----------------------------------------------------------------------

// Shown once, with a copy button: only its hash is kept.
function secretOnce(id, label, secret) {
  const output = h("output", { id }, secret);
  return h("div", { class: "secret", role: "alert" },
    h("p", {}, h("strong", {}, `${label}: copy it now. `),
      "It is shown once and cannot be read again."),
    h("p", {}, output, " ", h("button", { type: "button", class: "secondary", onclick: () =>
      navigator.clipboard.writeText(secret).then(() => flash("Copied"),
        () => getSelection().selectAllChildren(output)) }, "Copy")));
}

let knownScopes = null;
// The scopes a key may carry, as the API's own description lists them.
async function scopeNames() {
  if (!knownScopes) {
    const doc = await fetch("/openapi.json").then((r) => r.json());
    const found = new Set();
    const walk = (node) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        if (Array.isArray(node.enum)) node.enum.forEach((s) => found.add(s));
        else if (node.$ref) walk(doc.components.schemas[node.$ref.split("/").pop()]);
        else Object.values(node).forEach(walk);
      }
    };
    walk(doc.components.schemas.OwnKeyCreate.properties.scopes);
    knownScopes = [...found];
  }
  return knownScopes;
}

async function keys(view) {
  requireLink("keys");
  const table = h("table", { class: "wide", id: "keys" });
  const created = h("div", { id: "created-key" });
  const form = h("form", { id: "create-key" },
    field("Name", "name", { required: true, maxlength: 200 }),
    h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes (none ticked: all of yours)"),
      (await scopeNames()).map((s) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: "scopes", value: s }), ` ${s}`))),
    field("Expires (optional)", "expiresAt", { type: "datetime-local" }),
    h("button", { type: "submit" }, "Create key"));
  form.addEventListener("submit", submitter(form, async (values) => {
    const scopes = new FormData(form).getAll("scopes");
    const body = { name: values.name };
    if (scopes.length) body.scopes = scopes;
    if (values.expiresAt) body.expiresAt = new Date(values.expiresAt).toISOString();
    const key = await api("POST", "/account/keys", body);
    form.reset();
    fill(created, secretOnce("new-key-secret", `The key "${key.name}"`, key.apiKey));
    await refresh();
  }));
  view.append(h("h1", {}, "API keys"), table, h("h2", {}, "New key"), created, form);

  async function refresh() {
    const list = await api("GET", "/account/keys");
    fill(table,
      h("thead", {}, h("tr", {}, ["Name", "Prefix", "Scopes", "Created", "Last used", "Expires", ""]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, list.map((k) => h("tr", { dataset: { key: k.id } },
        h("td", { "data-label": "Name" }, k.name || "—"),
        h("td", { "data-label": "Prefix" }, h("code", {}, k.prefix ? `${k.prefix}…` : "—")),
        h("td", { "data-label": "Scopes" }, k.scopes ? k.scopes.join(", ") : "all"),
        h("td", { "data-label": "Created" }, when(k.createdAt)),
        h("td", { "data-label": "Last used" }, when(k.lastUsedAt)),
        h("td", { "data-label": "Expires" }, k.expiresAt ? when(k.expiresAt) : "never"),
        h("td", {}, h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Delete the key "${k.name || k.prefix}"? It stops working at once.`)) return;
          await api("DELETE", `/account/keys/${encodeURIComponent(k.id)}`)
            .then(() => flash("Key deleted"), (e) => flash(e.message));
          await refresh();
        } }, "Delete"))))));
  }
  await refresh();
}

// ---- Users -------------------------------------------------------------------

function roleSelect(value, attrs = {}) {
  return h("select", { name: "role", ...attrs },
    ROLES.map((r) => h("option", { value: r, selected: r === value }, r)));
}

async function users(view) {
  requireLink("users");
  const table = h("table", { class: "wide", id: "users" });
  const added = h("div", { id: "added-user" });
  const form = h("form", { id: "add-user" },
    field("E-mail", "email", { type: "email", required: true }),
    h("label", {}, "Role", roleSelect("member")),
    field("Password (12+ characters; leave empty to send an invitation instead)", "password",
      { type: "password", minlength: 12, autocomplete: "new-password" }),
    h("button", { type: "submit" }, "Add user"));
  form.addEventListener("submit", submitter(form, async (values) => {
    const body = { email: values.email, role: values.role };
    if (values.password) body.password = values.password;
    const user = await api("POST", "/account/users", body);
    form.reset();
    fill(added, user.invitationToken
      ? [secretOnce("invitation-token", `The invitation of ${user.email}`, user.invitationToken),
        h("p", { class: "muted" }, "They set their password under \"Have an invitation?\" on ",
          "the sign-in page.")]
      : h("p", {}, `${user.email} can sign in now.`));
    await refresh();
  }));
  view.append(h("h1", {}, "Users"), table, h("h2", {}, "Add a user"), added, form);

  // The list is read again either way: a refused role change puts the select back.
  const change = (u, patch, done) =>
    api("PATCH", `/account/users/${encodeURIComponent(u.id)}`, patch)
      .then(() => flash(done), (e) => flash(e.message))
      .then(refresh);
  async function refresh() {
    const list = await api("GET", "/account/users");
    const me = session()?.user.id;
    fill(table,
      h("thead", {}, h("tr", {}, ["E-mail", "Role", "Status", "Created", ""]
        .map((t) => h("th", {}, t)))),
      // Not oneself: an admin who demotes, disables or deletes themself is locked out.
      h("tbody", {}, list.map((u) => h("tr", { dataset: { user: u.email } },
        h("td", { "data-label": "E-mail" }, u.email, u.id === me ? " (you)" : ""),
        h("td", { "data-label": "Role" }, roleSelect(u.role, { "aria-label": `Role of ${u.email}`,
          disabled: u.id === me,
          onchange: (e) => change(u, { role: e.target.value }, "Role changed") })),
        h("td", { "data-label": "Status", class: "user-status" },
          u.disabled ? "disabled" : u.invited ? "invited" : "active"),
        h("td", { "data-label": "Created" }, when(u.createdAt)),
        h("td", { class: "actions" }, u.id === me ? null : [
          h("button", { type: "button", class: "secondary", onclick: () =>
            change(u, { disabled: !u.disabled }, u.disabled ? "Enabled" : "Disabled") },
          u.disabled ? "Enable" : "Disable"),
          h("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Delete ${u.email}? They are signed out at once.`)) return;
            await api("DELETE", `/account/users/${encodeURIComponent(u.id)}`)
              .then(() => flash("User deleted"), (e) => flash(e.message));
            await refresh();
          } }, "Delete")])))));
  }
  await refresh();
}

ROUTES.push(
  [/^#\/account$/, account],
  [/^#\/keys$/, keys],
  [/^#\/users$/, users],
);
