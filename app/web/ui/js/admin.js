// Administration: API keys (create, shown once, revoke) and the audit log with filters.

import { describe } from "./api.js";
import { $, cell, el, fillTable, formatEpochSeconds } from "./dom.js";

const AUDIT_PAGE = 50;

export class AdminView {
  constructor(api) {
    this.api = api;
    this.auditOffset = 0;
    this.auditTotal = 0;
    this.confirming = null;
    this.setUpTabs();
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.createKey();
    });
    $("#key-dismiss").addEventListener("click", () => this.hideNewKey());
    $("#key-copy").addEventListener("click", () => {
      navigator.clipboard?.writeText($("#key-created-value").textContent).catch(() => {});
    });
    $("#audit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.auditOffset = 0;
      this.loadAudit();
    });
    $("#audit-older").addEventListener("click", () => {
      this.auditOffset += AUDIT_PAGE;
      this.loadAudit();
    });
    $("#audit-newer").addEventListener("click", () => {
      this.auditOffset = Math.max(0, this.auditOffset - AUDIT_PAGE);
      this.loadAudit();
    });
  }

  // Each tab only for callers holding its permission (from GET /api/auth/me), so the page
  // never asks for what would be refused.
  async show(can) {
    const keys = can("admin:keys");
    const audit = can("admin:config");
    $("#tab-keys").hidden = !keys;
    $("#tab-audit").hidden = !audit;
    $("#admin").hidden = !keys && !audit;
    if (!keys && !audit) return;
    this.select(keys ? $("#tab-keys") : $("#tab-audit"));
    if (keys) await this.refreshKeys();
  }

  hide() {
    $("#admin").hidden = true;
    this.hideNewKey();
  }

  setUpTabs() {
    const tabs = () => [$("#tab-keys"), $("#tab-audit")].filter((tab) => !tab.hidden);
    for (const tab of [$("#tab-keys"), $("#tab-audit")]) {
      tab.addEventListener("click", () => this.select(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const shown = tabs();
        const next = shown[(shown.indexOf(tab) + step + shown.length) % shown.length];
        next.focus();
        this.select(next);
      });
    }
  }

  select(tab) {
    for (const other of [$("#tab-keys"), $("#tab-audit")]) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(`#${other.getAttribute("aria-controls")}`).hidden = !selected;
    }
    if (tab.id === "tab-audit") this.loadAudit();
  }

  async refreshKeys() {
    try {
      this.renderKeys((await this.api.get("/api/auth/keys")).keys);
    } catch (error) {
      $("#key-error").textContent = describe(error);
    }
  }

  renderKeys(keys) {
    const rows = keys.map((key) => {
      const status = key.revoked ? "revoked" : key.expires_at && key.expires_at * 1000 < Date.now() ? "expired" : "active";
      const action = key.revoked
        ? el("td", {})
        : el("td", {}, el("button", {
            type: "button",
            class: "danger",
            "aria-label": this.confirming === key.key_id ? `Confirm revoking key ${key.name}` : `Revoke key ${key.name}`,
            "data-focus-key": `revoke:${key.key_id}`,
            onclick: () => this.revoke(key),
          }, this.confirming === key.key_id ? "Confirm revoke" : "Revoke"));
      return el("tr", { "data-key": key.key_id },
        el("td", { class: "key-id" }, key.key_id),
        cell(key.name),
        cell(key.user_id),
        cell(key.permissions.join(", ")),
        cell(formatEpochSeconds(key.created_at)),
        cell(formatEpochSeconds(key.last_used_at)),
        el("td", { class: "key-status" }, status),
        action);
    });
    this.keys = keys;
    fillTable($("#keys-table"), rows);
  }

  async createKey() {
    const name = $("#key-name").value.trim();
    $("#key-error").textContent = "";
    if (!name) {
      $("#key-error").textContent = "A key needs a name.";
      $("#key-name").focus();
      return;
    }
    try {
      const created = await this.api.post("/api/auth/keys", { name, permissions: [$("#key-role").value] });
      $("#key-created-value").textContent = created.api_key;
      $("#key-created").hidden = false;
      $("#key-name").value = "";
      $("#key-dismiss").focus();
      await this.refreshKeys();
    } catch (error) {
      $("#key-error").textContent = `The key was not created: ${describe(error)}`;
    }
  }

  hideNewKey() {
    $("#key-created-value").textContent = "";
    $("#key-created").hidden = true;
  }

  // Two clicks: the first asks for confirmation, the second revokes.
  async revoke(key) {
    $("#key-error").textContent = "";
    if (this.confirming !== key.key_id) {
      this.confirming = key.key_id;
      this.renderKeys(this.keys);
      return;
    }
    this.confirming = null;
    try {
      await this.api.delete("/api/auth/keys", { key_id: key.key_id });
    } catch (error) {
      $("#key-error").textContent = `The key was not revoked: ${describe(error)}`;
    }
    await this.refreshKeys();
  }

  auditQuery() {
    const form = $("#audit-form");
    const query = { limit: AUDIT_PAGE, offset: this.auditOffset };
    for (const name of ["type", "user_id", "action"]) query[name] = form.elements[name].value.trim();
    for (const name of ["start_time", "end_time"]) {
      const value = form.elements[name].value; // local time, from a datetime-local input
      if (value) query[name] = new Date(value).toISOString();
    }
    return query;
  }

  async loadAudit() {
    $("#audit-error").textContent = "";
    try {
      const answer = await this.api.get("/api/audit/logs", this.auditQuery());
      this.auditTotal = answer.total;
      const rows = answer.logs.map((entry) =>
        el("tr", { "data-action": entry.action },
          cell(formatEpochSeconds(entry.timestamp)),
          cell(entry.log_type),
          cell(entry.action),
          cell(entry.user_id),
          cell(entry.ip_address),
          el("td", { class: "details" }, JSON.stringify(entry.details))));
      fillTable($("#audit-table"), rows);
      const first = answer.total ? answer.offset + 1 : 0;
      $("#audit-summary").textContent = `Entries ${first} to ${answer.offset + answer.logs.length} of ${answer.total}.`;
      $("#audit-older").disabled = !answer.has_more;
      $("#audit-newer").disabled = answer.offset === 0;
    } catch (error) {
      $("#audit-error").textContent = `The audit log could not be read: ${describe(error)}`;
    }
  }
}
