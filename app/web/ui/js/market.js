// The market panel: the selected symbol's last price, its change, and the chart.

import { drawChart } from "./chart.js";
import { $, el, formatPrice } from "./dom.js";

export class MarketView {
  constructor(store) {
    this.store = store;
    this.select = $("#market-symbol");
    this.tickers = new Map();
    this.select.addEventListener("change", () => this.render());
  }

  setSymbols(symbols) {
    const current = this.select.value;
    this.select.replaceChildren(...symbols.map((s) => new Option(s, s)));
    if (symbols.includes(current)) this.select.value = current;
    this.buildTickers(symbols);
  }

  // Every configured symbol's last price; choosing one shows it below. The buttons are made
  // once, and only their text changes, so keyboard focus stays where it is.
  buildTickers(symbols) {
    this.tickers = new Map();
    const items = symbols.map((symbol) => {
      const price = el("span", { class: "ticker-price" }, "–");
      const button = el("button", {
        type: "button",
        class: "ticker",
        "aria-pressed": "false",
        "data-symbol": symbol,
        onclick: () => {
          this.select.value = symbol;
          this.render();
        },
      }, el("span", { class: "ticker-symbol" }, symbol), " ", price);
      this.tickers.set(symbol, { button, price });
      return el("li", {}, button);
    });
    $("#tickers").replaceChildren(...items);
    $("#tickers").hidden = symbols.length < 2; // one symbol: the price below says it all
  }

  renderTickers(selected) {
    for (const [symbol, { button, price }] of this.tickers) {
      const quote = this.store.quotes.get(symbol);
      price.textContent = quote ? formatPrice(quote.price) : "–";
      button.setAttribute("aria-pressed", String(symbol === selected));
    }
  }

  render() {
    const symbol = this.select.value;
    this.renderTickers(symbol);
    const quote = this.store.quotes.get(symbol);
    const series = this.store.series.get(symbol) || [];
    $("#price").textContent = quote ? formatPrice(quote.price) : "–";
    const change = $("#price-change");
    if (series.length >= 2) {
      const first = series[0].price;
      const diff = quote.price - first;
      const percent = first ? (diff / first) * 100 : 0;
      const sign = diff > 0 ? "▲ +" : diff < 0 ? "▼ " : "";
      change.textContent = `${sign}${formatPrice(diff, quote.price)} (${percent.toFixed(2)}%)`;
      change.className = `change ${diff > 0 ? "up" : diff < 0 ? "down" : ""}`;
    } else {
      change.textContent = "";
    }
    const chart = $("#chart");
    chart.setAttribute("aria-label", quote ? `${symbol} price chart, last ${formatPrice(quote.price)}` : `${symbol} price chart, no price yet`);
    drawChart(chart, series, formatPrice);
  }
}
