// What the dashboard shows, folded from REST snapshots and stream events.
//
// Orders are keyed by client_order_id and fills by their event id, so a snapshot or a replayed
// event that was already seen changes nothing. An order only moves forward: along its
// lifecycle, then in time (one engine step gives all its events the same timestamp). An older
// update, from a snapshot racing the stream, only fills in what is still unknown.

const SERIES_LENGTH = 300;
const FILLS_KEPT = 200;
export const OPEN_STATUSES = new Set(["PENDING", "ACCEPTED", "PARTIALLY_FILLED"]);
const STAGE = { PENDING: 0, ACCEPTED: 1, PARTIALLY_FILLED: 2 }; // anything else is final: 3

function stage(status) {
  return status in STAGE ? STAGE[status] : status ? 3 : -1;
}

// Is the update (status, ts) at least as far along as the order shown?
function isNewer(current, status, ts) {
  const difference = stage(status) - stage(current.status);
  if (difference !== 0) return difference > 0;
  return !ts || !current.last_ts_ns || ts >= current.last_ts_ns;
}

export class Store {
  constructor() {
    this.symbols = [];
    this.quotes = new Map(); // symbol -> {price, ts}
    this.series = new Map(); // symbol -> [{ts, price}]
    this.orders = new Map(); // client_order_id -> order state
    this.fills = new Map(); // event id -> fill
    this.balances = []; // [{asset, free, locked}]
    this.balancesTs = 0;
    this.listeners = [];
  }

  subscribe(listener) { this.listeners.push(listener); }
  changed(part) { for (const listener of this.listeners) listener(part); }

  setSymbols(symbols) {
    this.symbols = symbols;
    this.changed("symbols");
  }

  apply(type, data, id) {
    switch (type) {
      case "market": this.quote(data); break;
      case "order_update": this.orderUpdate(data); break;
      case "order_state": this.orderState(data); break;
      case "fill": this.fill(data, id); break;
      case "account": this.account(data); break;
      default: break;
    }
  }

  quote({ symbol, price, ts_ns: ts }) {
    if (!symbol || price === null || price === undefined) return;
    const last = this.quotes.get(symbol);
    if (last && ts !== undefined && last.ts > ts) return;
    this.quotes.set(symbol, { price, ts: ts || 0 });
    let series = this.series.get(symbol);
    if (!series) this.series.set(symbol, (series = []));
    if (!series.length || series[series.length - 1].ts !== ts) series.push({ ts, price });
    if (series.length > SERIES_LENGTH) series.splice(0, series.length - SERIES_LENGTH);
    this.changed("market");
  }

  orderState(data) {
    this.mergeOrder(data.client_order_id, data.last_ts_ns, { ...data });
  }

  orderUpdate(data) {
    const fields = {
      status: data.status,
      venue_order_id: data.venue_order_id,
      symbol: data.symbol,
      side: data.side,
      order_type: data.order_type,
      time_in_force: data.time_in_force,
      order_qty: data.qty,
      limit_price: data.price,
      reason: data.reason,
    };
    this.mergeOrder(data.client_order_id, data.ts_ns, fields);
  }

  mergeOrder(cid, ts, fields) {
    if (!cid) return;
    const current = this.orders.get(cid) || { client_order_id: cid, executed_qty: 0 };
    const newer = isNewer(current, fields.status, ts);
    const next = { ...current };
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined || name === "type") continue;
      if (newer || next[name] === undefined || next[name] === null) next[name] = value;
    }
    next.executed_qty = Math.max(Number(current.executed_qty) || 0, Number(next.executed_qty) || 0);
    if (newer && ts) next.last_ts_ns = ts;
    next.client_order_id = cid;
    this.orders.set(cid, next);
    this.changed("orders");
  }

  fill(data, id) {
    if (id === null || id === undefined || this.fills.has(id)) return;
    this.fills.set(id, { id, ...data });
    if (this.fills.size > FILLS_KEPT) {
      const oldest = [...this.fills.keys()].sort((a, b) => a - b).slice(0, this.fills.size - FILLS_KEPT);
      for (const key of oldest) this.fills.delete(key);
    }
    this.changed("fills");
  }

  account({ balances, ts_ns: ts }) {
    if (!Array.isArray(balances)) return;
    if (ts && this.balancesTs && ts < this.balancesTs) return;
    this.balances = balances.map((b) => ({ asset: b.asset, free: b.free, locked: b.locked }));
    this.balancesTs = ts || this.balancesTs;
    this.changed("balances");
  }

  // GET /api/orders: recent order events with their stream ids (fills included).
  loadOrderEvents(items) {
    for (const item of items) this.apply(item.type, item, item._id);
  }

  loadOrderStates(items) {
    for (const item of items) this.orderState(item);
  }

  openOrders() {
    return this.ordersNewestFirst().filter((order) => OPEN_STATUSES.has(order.status));
  }

  ordersNewestFirst() {
    return [...this.orders.values()].sort((a, b) => (b.last_ts_ns || 0) - (a.last_ts_ns || 0));
  }

  fillsNewestFirst() {
    return [...this.fills.values()].sort((a, b) => b.id - a.id);
  }
}
