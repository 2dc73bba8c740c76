// lanegate operator view: every tenant, plan, instance, disabled webhook and dead letter, over
// the operator API (/admin/*). Loaded after console.js, whose helpers (h, fill, api, flash,
// submitter, field, errorList, when, signOut) it uses; the operator key stays in this tab only.
"use strict";

const PAGE_SIZE = 25;
const DEAD_SHOWN = 20;

// A section of the page that renders itself again after each action on it.
function section(id, title, render) {
  const body = h("div", { class: "body" });
  const el = h("section", { id }, h("h2", {}, title), body);
  el.refresh = async () => {
    try {
      await render(body);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      fill(body, errorList(error));
    }
  };
  return el;
}

function table(id, headings, rows) {
  return h("table", { class: "wide", id },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

// Previous / next buttons of a paged listing; `go` renders the asked-for page.
function pager(meta, go) {
  return h("div", { class: "actions pager" },
    h("button", { type: "button", class: "secondary", disabled: meta.page <= 1,
      onclick: () => go(meta.page - 1) }, "Previous"),
    h("span", { class: "muted" }, `page ${meta.page} of ${Math.max(meta.pages, 1)}` +
      ` (${meta.total})`),
    h("button", { type: "button", class: "secondary", disabled: meta.page >= meta.pages,
      onclick: () => go(meta.page + 1) }, "Next"));
}

function paged(path, render) {
  let page = 1;
  return async (body) => {
    const go = async (asked) => {
      page = asked;
      const answer = await api("GET", `${path}${path.includes("?") ? "&" : "?"}page=${page}` +
        `&limit=${PAGE_SIZE}`);
      fill(body, render(answer.data, body), answer.meta.pages > 1 ? pager(answer.meta, go) : null);
    };
    await go(page);
  };
}

// ---- Tenants ---------------------------------------------------------------

// A button's action, whose refusal by the API is shown rather than lost.
function guarded(action) {
  return async () => {
    try {
      await action();
    } catch (error) {
      flash(error instanceof ApiError ? error.lines().join(" ") : String(error));
    }
  };
}

function tenantRows(list, body) {
  return table("tenants", ["Tenant", "Plan", "Instances", "Accepted / sent today", "Status", ""],
    list.map((t) => h("tr", { dataset: { tenant: t.id } },
      cell("Tenant", t.id, h("span", { class: "muted" }, ` ${t.name}`)),
      cell("Plan", t.plan ? t.plan.name || t.plan.id : "—"),
      cell("Instances", t.instances),
      cell("Today", `${t.usageToday.accepted} / ${t.usageToday.sent}`),
      cell("Status", h("span", { class: t.disabled ? "state close" : "state open" },
        t.disabled ? "disabled" : "enabled")),
      cell("Action", h("button", {
        type: "button", class: t.disabled ? "secondary" : "danger",
        onclick: guarded(async () => {
          await api("PATCH", `/admin/tenants/${encodeURIComponent(t.id)}`,
            { disabled: !t.disabled });
          flash(`${t.id} ${t.disabled ? "enabled" : "disabled"}`);
          await body.closest("section").refresh();
        }),
      }, t.disabled ? "Enable" : "Disable")))));
}

// ---- Plans -----------------------------------------------------------------

// The plan limits as the API describes them, so new limits show up without a change here.
async function planLimits() {
  const spec = await (await fetch("/openapi.json")).json();
  const properties = spec.components.schemas.PlanCreate.properties;
  return Object.keys(properties).filter((name) => !["id", "name"].includes(name));
}

function limitFields(limits, plan = {}) {
  return limits.map((name) => field(name, name,
    { type: "number", min: 0, value: plan[name] ?? null, placeholder: "not set" }));
}

// Form values as a plan body: numbers for limits; a cleared limit is null when editing.
function planBody(values, limits, editing) {
  const body = {};
  for (const [name, value] of Object.entries(values)) {
    if (!limits.includes(name)) body[name] = value.trim();
    else if (value.trim() !== "") body[name] = Number(value);
    else if (editing) body[name] = null;
  }
  return body;
}

async function plans(body) {
  const [list, limits] = await Promise.all([api("GET", "/admin/plans"), planLimits()]);
  const editor = h("div", { id: "plan-editor" });
  const create = h("form", { id: "create-plan" },
    field("Plan id", "id", { required: true }), field("Name", "name", { required: true }),
    limitFields(limits), h("button", { type: "submit" }, "Create plan"));
  create.addEventListener("submit", submitter(create, async (values) => {
    await api("POST", "/admin/plans", planBody(values, limits, false));
    flash(`plan ${values.id} created`);
    await body.closest("section").refresh();
  }));
  const edit = (plan) => {
    const form = h("form", { id: "edit-plan", dataset: { plan: plan.id } },
      h("h3", {}, `Edit ${plan.id}`), field("Name", "name", { required: true, value: plan.name }),
      limitFields(limits, plan), h("button", { type: "submit" }, "Save plan"));
    form.addEventListener("submit", submitter(form, async (values) => {
      await api("PATCH", `/admin/plans/${encodeURIComponent(plan.id)}`,
        planBody(values, limits, true));
      flash(`plan ${plan.id} saved`);
      await body.closest("section").refresh();
    }));
    fill(editor, form);
  };
  fill(body,
    table("plans", ["Plan", ...limits, ""], list.map((p) => h("tr", { dataset: { plan: p.id } },
      cell("Plan", p.id, h("span", { class: "muted" }, ` ${p.name}`)),
      limits.map((name) => cell(name, p[name] ?? "—")),
      cell("Action", h("button", { type: "button", class: "secondary", onclick: () => edit(p) },
        "Edit"))))),
    editor, h("h3", {}, "New plan"), create);
}

// ---- Instances and webhooks ------------------------------------------------------------

function instanceRows(list) {
  return table("all-instances", ["Instance", "Tenant", "State", "Pause", "Waiting (u/n/b)"],
    list.map((i) => h("tr", { dataset: { instance: i.instanceName } },
      cell("Instance", i.instanceName, h("span", { class: "muted" }, ` ${i.provider}`)),
      cell("Tenant", i.tenantId),
      cell("State", h("span", { class: `state ${i.state}` }, i.state || "—")),
      cell("Pause", i.pause ? `${i.pause.by}: ${i.pause.reason}` +
        (i.pause.until ? ` until ${when(i.pause.until)}` : "") : "—"),
      cell("Waiting", `${i.waiting.urgent} / ${i.waiting.normal} / ${i.waiting.bulk}`))));
}

function webhookRows(list) {
  if (!list.length) return h("p", { class: "muted" }, "Every webhook is on.");
  return table("webhooks-off", ["Instance", "Tenant", "URL", "Turned off", "Why"],
    list.map((w) => h("tr", { dataset: { instance: w.instanceName } },
      cell("Instance", w.instanceName), cell("Tenant", w.tenantId), cell("URL", w.webhookUrl),
      cell("Turned off", when(w.disabledAt)), cell("Why", w.reason || "—"))));
}

// ---- Dead letters --------------------------------------------------------------------

function deadQueue(queue, body) {
  const path = `/admin/dead-letters/${encodeURIComponent(queue.queue)}`;
  const refresh = () => body.closest("section").refresh();
  const confirmRow = h("div", { class: "confirm", hidden: true },
    h("span", {}, `Drop all ${queue.count} message(s) of ${queue.queue}? This cannot be undone.`),
    h("button", { type: "button", class: "danger", onclick: guarded(async () => {
      const answer = await api("DELETE", path);
      flash(`${answer.purged} message(s) dropped from ${queue.queue}`);
      await refresh();
    }) }, "Drop them"),
    h("button", { type: "button", class: "secondary",
      onclick: () => { confirmRow.hidden = true; } }, "Cancel"));
  return h("div", { class: "dead-queue", dataset: { queue: queue.queue } },
    h("h3", {}, `${queue.queue}: `, h("span", { class: "count" }, queue.count), " dead"),
    queue.messages.length ? table(null, ["Event", "Kind", "Attempts", "Reason"],
      queue.messages.map((m) => h("tr", {},
        cell("Event", m.id || "—"), cell("Kind", m.kind || "—"), cell("Attempts", m.attempts ?? "—"),
        cell("Reason", m.reason || "—")))) : null,
    queue.count ? h("div", { class: "actions" },
      h("button", { type: "button", class: "replay", onclick: guarded(async () => {
        const answer = await api("POST", `${path}/replay`);
        flash(`${answer.replayed} message(s) put back on ${queue.queue}`);
        await refresh();
      }) }, "Replay all"),
      h("button", { type: "button", class: "danger purge",
        onclick: () => { confirmRow.hidden = false; } }, "Purge…"),
    ) : null,
    confirmRow);
}

async function deadLetters(body) {
  const answer = await api("GET", `/admin/dead-letters?limit=${DEAD_SHOWN}`);
  fill(body, answer.queues.map((q) => deadQueue(q, body)));
}

// ---- Page ----------------------------------------------------------------------------

function operatorSignIn(view) {
  // Where signOut() sends a refused key already: no hashchange wipes the form's errors.
  history.replaceState(null, "", "#/sign-in");
  const form = h("form", { id: "sign-in" },
    field("Operator key", "apikey", { type: "password", required: true, autocomplete: "off" }),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", submitter(form, async ({ apikey }) => {
    sessionStorage.setItem(KEY, apikey.trim());
    try {
      await api("GET", "/admin/plans");
    } catch (error) {
      sessionStorage.removeItem(KEY);
      throw error;
    }
    await render();
  }));
  view.append(h("h1", {}, "Operator sign-in"), h("p", { class: "muted" },
    "Use the operator key (LANEGATE_ADMIN_KEY). It stays in this browser tab only."), form);
}

async function render() {
  const view = document.getElementById("view");
  fill(view);
  const signedIn = Boolean(sessionStorage.getItem(KEY));
  document.getElementById("nav").hidden = !signedIn;
  if (!signedIn) return operatorSignIn(view);
  // A later sign-out (a 401 anywhere) changes the hash again, which renders the sign-in.
  history.replaceState(null, "", location.pathname);
  const sections = [
    section("tenants", "Tenants", paged("/admin/overview/tenants", tenantRows)),
    section("plans", "Plans", plans),
    section("instances", "Instances", paged("/admin/overview/instances", instanceRows)),
    section("disabled-webhooks", "Disabled webhooks",
      paged("/admin/overview/disabled-webhooks", webhookRows)),
    section("dead-letters", "Dead letters", deadLetters),
  ];
  view.append(h("h1", {}, "Operator view"),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary",
      id: "refresh", onclick: () => Promise.all(sections.map((s) => s.refresh())) },
    "Refresh")),
    ...sections);
  await Promise.all(sections.map((s) => s.refresh()));
}

window.addEventListener("hashchange", () => {
  if (!sessionStorage.getItem(KEY)) render();
});
document.getElementById("sign-out").addEventListener("click", signOut);
render();
