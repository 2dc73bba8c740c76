// lanegate console: the chat list and one conversation with a reply box (after console.js).
"use strict";

const CHATS_PAGE = 25;
const THREAD_PAGE = 30;
// How far an outbound message got, as a messenger draws it.
const TICKS = { pending: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };

function chatPath(instanceName, contact) {
  return `#/chat/${encodeURIComponent(instanceName)}/${encodeURIComponent(contact)}`;
}

// Newest first by time, the id breaking ties, as the API pages them.
function newestFirst(a, b, at) {
  return Date.parse(at(b)) - Date.parse(at(a)) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

async function chats(view) {
  const filters = h("form", { class: "inline", id: "chat-filters" },
    h("label", {}, "Instance", h("select", { name: "instanceName" },
      h("option", { value: "" }, "all"))),
    h("button", { type: "submit", class: "secondary" }, "Filter"));
  const list = h("ul", { class: "chats", id: "chats" });
  const more = h("div", { class: "actions" });
  const problem = h("div");
  const rows = new Map();  // one per instance and contact, the polls refreshing the newest
  let next = null;
  let pages = 0;

  async function load(cursor) {
    const query = new URLSearchParams({ limit: String(CHATS_PAGE) });
    const instanceName = new FormData(filters).get("instanceName");
    if (instanceName) query.set("instanceName", instanceName);
    if (cursor) query.set("cursor", cursor);
    return api("GET", `/chats?${query}`);
  }

  function keep(page) {
    for (const c of page.chats) rows.set(`${c.instanceName}|${c.contact}`, c);
  }

  function render() {
    const sorted = [...rows.values()]
      .sort((a, b) => Date.parse(b.lastMessageAt) - Date.parse(a.lastMessageAt));
    fill(list, sorted.length ? sorted.map((c) => h("li", {
      dataset: { instance: c.instanceName, contact: c.contact }, class: c.unread ? "unread" : null },
      h("a", { href: chatPath(c.instanceName, c.contact) },
        h("strong", {}, `+${c.contact}`), " ",
        c.unread ? h("span", { class: "badge", title: "unread" }, String(c.unread)) : null),
      h("span", { class: "muted" }, ` ${c.instanceName} · ${when(c.lastMessageAt)}`),
      h("div", { class: "last" }, c.lastMessage.direction === "outbound" ? "You: " : "",
        c.lastMessage.text ?? `(${c.lastMessage.type})`)))
      : h("li", { class: "muted" }, "No chats yet."));
    fill(more, next ? h("button", { type: "button", class: "secondary", id: "more-chats",
      onclick: () => older().catch(show) }, "Load more") : null);
  }

  function show(error) {
    if (!(error instanceof ApiError)) throw error;
    fill(problem, errorList(error));
  }

  async function older() {
    const page = await load(next);
    keep(page);
    next = page.pagination.next;
    pages += 1;
    render();
  }

  async function refresh() {
    try {
      const page = await load(null);
      keep(page);
      if (pages <= 1) next = page.pagination.next;  // deeper pages keep their own cursor
      pages = Math.max(pages, 1);
      fill(problem);
      render();
    } catch (error) {
      show(error);
    }
  }

  filters.addEventListener("submit", submitter(filters, async () => {
    rows.clear();
    pages = 0;
    await refresh();
  }));
  view.append(h("h1", {}, "Chats"), filters, problem, list, more);
  const instances = await api("GET", "/instances");
  filters.querySelector("select").append(
    ...instances.map((i) => h("option", { value: i.instanceName }, i.instanceName)));
  await refresh();
  return refresh;
}

function bubble(m) {
  const outbound = m.direction === "outbound";
  return h("li", { class: `bubble ${m.direction}`, dataset: { message: m.id } },
    h("div", { class: "text" }, m.text ?? `(${m.type})`),
    h("div", { class: "meta muted" }, when(m.timestamp),
      outbound ? h("span", { class: `tick ${m.status}`, dataset: { status: m.status },
        title: m.status }, ` ${TICKS[m.status] || ""} ${m.status}`) : null));
}

async function chat(view, instanceName, phone) {
  const conversation = `/contacts/${encodeURIComponent(phone)}/messages`;
  const thread = h("ol", { class: "thread", id: "thread" });
  const earlier = h("div", { class: "actions" });
  const problem = h("div");
  const reply = h("form", { class: "reply", id: "reply" },
    h("label", {}, "Reply (urgent lane)", h("textarea", { name: "text", required: true, rows: 2 })),
    h("button", { type: "submit" }, "Send"));
  const messages = new Map();
  let olderCursor;  // undefined until the first page says whether there are older ones

  async function load(cursor) {
    const query = new URLSearchParams({ instanceName, limit: String(THREAD_PAGE) });
    if (cursor) query.set("cursor", cursor);
    return api("GET", `${conversation}?${query}`);
  }

  async function markRead() {
    try {
      await api("POST", `/chats/${encodeURIComponent(instanceName)}/${encodeURIComponent(phone)}/read`);
    } catch (error) {
      // A conversation nobody has written in yet has no chat to mark.
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
    }
  }

  function render(scroll) {
    const oldestFirst = [...messages.values()]
      .sort((a, b) => newestFirst(b, a, (m) => m.timestamp));
    fill(thread, oldestFirst.length ? oldestFirst.map(bubble)
      : h("li", { class: "muted" }, "No messages yet."));
    fill(earlier, olderCursor ? h("button", { type: "button", class: "secondary",
      id: "older-messages", onclick: () => older().catch(show) }, "Load older") : null);
    if (scroll) thread.lastElementChild?.scrollIntoView({ block: "end" });
  }

  function show(error) {
    if (!(error instanceof ApiError)) throw error;
    fill(problem, errorList(error));
  }

  async function older() {
    const page = await load(olderCursor);
    for (const m of page.messages) messages.set(m.id, m);
    olderCursor = page.pagination.next;
    render(false);
  }

  // The newest page again: new messages join, statuses move. While the contact has the
  // last word the chat is marked read at each poll, since its count may rise just after
  // its message shows.
  async function refresh() {
    try {
      const page = await load(null);
      const arrived = page.messages.filter((m) => !messages.has(m.id));
      for (const m of page.messages) messages.set(m.id, m);
      if (olderCursor === undefined) olderCursor = page.pagination.next;
      if (page.messages[0]?.direction === "inbound") await markRead();
      fill(problem);
      render(arrived.length > 0);
    } catch (error) {
      show(error);
    }
  }

  reply.addEventListener("submit", submitter(reply, async ({ text }) => {
    const answer = await api("POST", "/message/text",
      { instanceName, to: phone, text, lane: "urgent" });
    reply.reset();
    flash(`Queued ${answer.id}`);
    await refresh();
  }));
  view.append(
    h("p", {}, h("a", { href: "#/chats" }, "← Chats")),
    h("h1", {}, `+${phone}`), h("p", { class: "muted" }, `through ${instanceName}`),
    earlier, thread, problem, reply);
  await markRead();
  await refresh();
  return refresh;
}

ROUTES.push([/^#\/chats$/, chats], [/^#\/chat\/([^/]+)\/([^/]+)$/, chat]);
