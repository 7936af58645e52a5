// The dashboard: sign in when the gateway asks for it, then follow the live stream.

import { AdminView } from "./admin.js";
import { Api, describe } from "./api.js";
import { $ } from "./dom.js";
import { MarketView } from "./market.js";
import { Session } from "./session.js";
import { Store } from "./store.js";
import { LiveStream } from "./stream.js";
import { Tables } from "./tables.js";
import { Ticket } from "./ticket.js";

const CONNECTION_TEXT = { live: "Live", reconnecting: "Reconnecting…", offline: "Not connected" };
const LOGIN_MESSAGES = {
  invalid_credentials: "Wrong user id or password.",
  rate_limit_exceeded: "Too many attempts; wait a few minutes and try again.",
};
const RETRY_BOOT_MS = 2000;
const READ_CONFIG = "read:config";

const session = new Session();
const api = new Api(session);
const store = new Store();
const market = new MarketView(store);
const ticket = new Ticket(api);
const tables = new Tables(store, api);
const admin = new AdminView(api);
const stream = new LiveStream({
  onEvent: (type, data, id) => store.apply(type, data, id),
  onStatus: showConnection,
  onOpen: () => resync(),
});
let started = false;
let caller = null; // GET /api/auth/me: who is signed in and what it may do

// --- rendering, at most once per frame -----------------------------------------------------

const RENDERERS = {
  symbols: () => {},
  market: () => market.render(),
  orders: () => { tables.renderOpenOrders(); tables.renderHistory(); },
  fills: () => tables.renderFills(),
  balances: () => tables.renderBalances(),
};
const dirty = new Set();
let frame = 0;
store.subscribe((part) => {
  dirty.add(part);
  if (!frame) frame = requestAnimationFrame(flush);
});
function flush() {
  frame = 0;
  for (const part of dirty) RENDERERS[part]?.();
  dirty.clear();
}

function showConnection(state) {
  const badge = $("#connection");
  badge.dataset.state = state;
  $("#connection-text").textContent = CONNECTION_TEXT[state] || state;
}

// --- start-up and sign-in -----------------------------------------------------------------

// Public status first: with auth on and no session, the sign-in form, without asking anything
// protected. Then the caller's permissions decide what the page asks for, so it is never
// refused (a refusal would be an audit entry for a page load).
async function boot() {
  session.resume();
  let status, config;
  try {
    status = await api.get("/api/auth/status");
    if (status.auth_enabled && session.accessExpired()) await session.refresh();
    if (status.auth_enabled && !session.accessToken()) {
      if ($("#login-view").hidden) showLogin(); // else it already says why
      return;
    }
    caller = await api.get("/api/auth/me");
    if (!can(READ_CONFIG)) {
      await session.logout();
      showLogin(`${caller.user_id} may not read the gateway's configuration (${READ_CONFIG}), which the dashboard needs.`);
      return;
    }
    config = await api.get("/api/config");
  } catch (error) {
    if (error.status === 401) {
      if ($("#login-view").hidden) showLogin();
      return;
    }
    showConnection("offline");
    setTimeout(boot, RETRY_BOOT_MS);
    return;
  }
  startDashboard(config, status);
}

function can(permission) {
  return Boolean(caller && caller.permissions.includes(permission));
}

function showLogin(note = "") {
  $("#main").hidden = true;
  $("#session").hidden = true;
  $("#login-view").hidden = false;
  $("#login-note").textContent = note;
  $("#login-user").focus();
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("#login-error");
  error.textContent = "";
  const userId = $("#login-user").value.trim();
  const password = $("#login-password").value;
  if (!userId || !password) {
    error.textContent = "Enter your user id and password.";
    return;
  }
  try {
    await session.login(userId, password);
  } catch (failure) {
    error.textContent = LOGIN_MESSAGES[failure.code] || describe(failure);
    return;
  }
  $("#login-password").value = "";
  if (started) window.location.reload(); // a new session starts from a clean page
  else boot();
});

session.onExpired = () => {
  stream.stop();
  admin.hide();
  showLogin("Your session has ended. Please sign in again.");
};

$("#logout").addEventListener("click", async () => {
  stream.stop();
  await session.logout();
  window.location.reload();
});

function startDashboard(config, status) {
  const symbols = (config.effective && config.effective.market_symbols) || [config.market_symbol];
  store.setSymbols(symbols);
  market.setSymbols(symbols);
  ticket.setSymbols(symbols);
  $("#login-view").hidden = true;
  $("#main").hidden = false;
  $("#session").hidden = false;
  $("#session-user").textContent = status.auth_enabled
    ? `Signed in as ${caller.user_id}`
    : "Authentication is off";
  $("#logout").hidden = !status.auth_enabled;
  if (!started) {
    started = true;
    stream.start();
  }
  admin.show(can);
}

// --- snapshots: at start and after every reconnect, so nothing missed while away is lost --

async function resync() {
  const panelError = (selector, error) => {
    const target = $(`${selector} .panel-error`);
    if (target) target.textContent = error ? describe(error) : "";
  };
  // What the caller may not read says so, in the gateway's own words, without asking it.
  const readable = (permission, selector) => {
    if (can(permission)) return true;
    if (selector) $(`${selector} .panel-error`).textContent = `Required permissions: ${permission}`;
    return false;
  };
  const snapshots = [];
  if (readable("read:orders", ".open-orders")) {
    snapshots.push(
      api.get("/api/orders_state").then(
        (answer) => { store.loadOrderStates(answer.items); panelError(".open-orders"); },
        (error) => panelError(".open-orders", error)),
      api.get("/api/orders").then((answer) => store.loadOrderEvents(answer.items), () => {}));
  }
  if (readable("read:account", ".balances")) {
    snapshots.push(api.get("/api/account").then(
      (answer) => { store.account(answer); panelError(".balances"); },
      (error) => panelError(".balances", error)));
  }
  if (readable("read:market")) {
    snapshots.push(...store.symbols.map((symbol) =>
      api.get("/api/market", { symbol }).then((quote) => store.quote(quote), () => {})));
  }
  await Promise.all(snapshots);
}

window.addEventListener("resize", () => market.render());
boot();
