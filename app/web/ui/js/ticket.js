// The order ticket: validates like the API, submits, and shows the API's answer.

import { describe } from "./api.js";
import { $ } from "./dom.js";
import { checkOrder } from "./validate.js";

const FIELDS = ["qty", "price", "client_order_id"];

export class Ticket {
  constructor(api) {
    this.api = api;
    this.form = $("#ticket");
    this.result = $("#ticket-result");
    this.error = $("#ticket-error");
    this.submit = $("#ticket-submit");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.place();
    });
    $("#ticket-type").addEventListener("change", () => this.syncType());
    this.syncType();
  }

  setSymbols(symbols) {
    const select = $("#ticket-symbol");
    const current = select.value;
    select.replaceChildren(...symbols.map((s) => new Option(s, s)));
    if (symbols.includes(current)) select.value = current;
  }

  syncType() {
    const market = $("#ticket-type").value === "market";
    const price = $("#ticket-price");
    price.disabled = market;
    if (market) this.showFieldError("price", null);
  }

  showFieldError(field, message) {
    const input = this.form.elements[field];
    const target = $(`#ticket-${field === "client_order_id" ? "cid" : field}-error`);
    if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
    if (target) target.textContent = message || "";
  }

  async place() {
    this.result.textContent = "";
    this.error.textContent = "";
    const data = Object.fromEntries(new FormData(this.form).entries());
    const { order, errors } = checkOrder(data);
    for (const field of FIELDS) this.showFieldError(field, errors[field] || null);
    const messages = Object.values(errors);
    if (messages.length) {
      this.error.textContent = `Please correct the order: ${messages.join("; ")}.`;
      const first = FIELDS.find((field) => errors[field]);
      if (first) this.form.elements[first].focus();
      return;
    }
    this.submit.disabled = true;
    try {
      const answer = await this.api.post("/api/order", order);
      if (answer.ok) {
        this.result.textContent = `Order ${answer.client_order_id} ${String(answer.status || "sent").toLowerCase()}.`;
        this.form.elements.client_order_id.value = "";
      } else {
        this.error.textContent = `Order ${answer.client_order_id} refused: ${answer.message || answer.error}`;
      }
    } catch (error) {
      this.error.textContent = `Order refused: ${describe(error)}`;
      for (const detail of Array.isArray(error.details) ? error.details : []) {
        if (FIELDS.includes(detail.field)) this.showFieldError(detail.field, detail.message);
      }
    } finally {
      this.submit.disabled = false;
    }
  }
}
