// Small DOM helpers. Text always goes in through textContent, never as HTML.

export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function cell(value, className) {
  return el("td", { class: className }, value === null || value === undefined ? "–" : value);
}

// Replace a table body's rows in one go. A focused control (marked with data-focus-key) gets
// the focus back in its new row, so live updates do not pull it from under the keyboard.
export function fillTable(table, rows) {
  const body = table.tBodies[0];
  const focused = body.contains(document.activeElement) ? document.activeElement.dataset.focusKey : undefined;
  body.replaceChildren(...rows);
  if (focused) body.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}

export function formatNumber(value, digits) {
  if (value === null || value === undefined || value === "") return "–";
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  if (digits !== undefined) return number.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return number.toLocaleString("en-US", { maximumFractionDigits: 8 });
}

// Decimals by magnitude (of `reference` when given, so a change reads like its price).
export function formatPrice(value, reference = value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return "–";
  const scale = Math.abs(Number(reference));
  const digits = scale >= 1000 ? 2 : scale >= 1 ? 4 : 6;
  return formatNumber(number, digits);
}

export function formatTimeNs(ts) {
  if (!ts) return "–";
  return new Date(ts / 1e6).toLocaleTimeString("en-GB", { hour12: false });
}

export function formatEpochSeconds(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toLocaleString("en-GB", { hour12: false });
}

export function sideText(side) {
  return el("span", { class: side === "SELL" ? "sell-text" : "buy-text" }, side || "–");
}

export function statusBadge(status) {
  return el("span", { class: `status ${status || ""}` }, status || "–");
}
