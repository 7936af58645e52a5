// Open orders, order history, fills and balances, drawn from the store.

import { describe } from "./api.js";
import { $, cell, el, fillTable, formatNumber, formatPrice, formatTimeNs, sideText, statusBadge } from "./dom.js";

const HISTORY_ROWS = 500; // a long-running gateway knows many more; the newest matter

function orderCells(order) {
  return [
    el("td", { class: "order-id" }, order.client_order_id),
    cell(order.symbol),
    el("td", {}, sideText(order.side)),
    cell(order.order_type),
    cell(formatNumber(order.order_qty), "num"),
    cell(order.limit_price === null || order.limit_price === undefined ? "market" : formatPrice(order.limit_price), "num"),
    cell(formatNumber(order.executed_qty), "num"),
  ];
}

export class Tables {
  constructor(store, api) {
    this.store = store;
    this.api = api;
    this.cancelling = new Set();
  }

  renderOpenOrders() {
    const orders = this.store.openOrders();
    const rows = orders.map((order) => {
      const cid = order.client_order_id;
      const button = el("button", {
        type: "button",
        class: "danger",
        "aria-label": `Cancel order ${cid}`,
        "data-focus-key": `cancel:${cid}`,
        disabled: this.cancelling.has(cid),
        onclick: () => this.cancel(cid, order.symbol),
      }, "Cancel");
      return el("tr", { "data-order": cid }, ...orderCells(order), el("td", {}, statusBadge(order.status)), el("td", {}, button));
    });
    fillTable($("#open-orders-table"), rows);
    $("#open-empty").hidden = rows.length > 0;
    $("#open-count").textContent = rows.length ? `(${rows.length})` : "";
  }

  renderHistory() {
    const orders = this.store.ordersNewestFirst();
    const rows = orders.slice(0, HISTORY_ROWS).map((order) =>
      el("tr", { "data-order": order.client_order_id },
        ...orderCells(order),
        cell(order.avg_price === null || order.avg_price === undefined ? null : formatPrice(order.avg_price), "num"),
        el("td", { class: "order-status" }, statusBadge(order.status)),
        cell(order.reason)));
    fillTable($("#history-table"), rows);
    $("#history-empty").hidden = rows.length > 0;
    $("#history-more").textContent =
      orders.length > HISTORY_ROWS ? `The newest ${HISTORY_ROWS} of ${orders.length} orders.` : "";
  }

  renderFills() {
    const rows = this.store.fillsNewestFirst().map((fill) =>
      el("tr", { "data-fill": fill.id, "data-order": fill.client_order_id },
        cell(formatTimeNs(fill.ts_ns)),
        cell(fill.client_order_id),
        cell(fill.symbol),
        el("td", {}, sideText(fill.side)),
        cell(formatNumber(fill.qty), "num"),
        cell(formatPrice(fill.price), "num")));
    fillTable($("#fills-table"), rows);
    $("#fills-empty").hidden = rows.length > 0;
  }

  renderBalances() {
    const rows = this.store.balances.map((b) =>
      el("tr", { "data-asset": b.asset },
        el("th", { scope: "row" }, b.asset),
        cell(formatNumber(b.free), "num free"),
        cell(formatNumber(b.locked), "num locked")));
    fillTable($("#balances-table"), rows);
  }

  async cancel(cid, symbol) {
    const panel = $(".open-orders .panel-error");
    panel.textContent = "";
    this.cancelling.add(cid);
    this.renderOpenOrders();
    try {
      await this.api.post("/api/cancel", { client_order_id: cid, symbol });
    } catch (error) {
      panel.textContent = `Cancel of ${cid} refused: ${describe(error)}`;
    } finally {
      this.cancelling.delete(cid);
      this.renderOpenOrders();
    }
  }
}
