// The order rules of POST /api/order (app/schemas/orders.py), checked before sending so the
// trader sees a mistake at once. The gateway checks again and its answer is what counts.

// A decimal as the API reads it: sign, digits with an optional point, optional exponent.
// Underscores are dropped first, as the API's parser does.
const NUMBER = /^([+-]?)(\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const CLIENT_ORDER_ID = /^[!-~]{1,64}$/;
const SYMBOL = /^[A-Za-z0-9]{1,20}$/;

// Exact, whatever the size: positive means no minus sign and a non-zero digit before the exponent.
function positive(text, label) {
  if (!text) return `${label} is required`;
  const match = NUMBER.exec(text.replaceAll("_", ""));
  if (!match) return `${label} must be a number`;
  const [, sign, mantissa] = match;
  if (sign === "-" || !/[1-9]/.test(mantissa)) return `${label} must be greater than 0`;
  return null;
}

// Returns {order, errors}: the JSON body to send, and messages per field name.
export function checkOrder(input) {
  const errors = {};
  const side = String(input.side || "").trim().toUpperCase();
  const orderType = String(input.order_type || "limit").trim().toLowerCase();
  const timeInForce = String(input.time_in_force || "GTC").trim().toUpperCase();
  const symbol = String(input.symbol || "").trim().toUpperCase();
  const qty = String(input.qty || "").trim();
  const price = String(input.price || "").trim();
  const clientOrderId = String(input.client_order_id || "").trim();

  if (!["BUY", "SELL"].includes(side)) errors.side = "side must be BUY or SELL";
  if (!["limit", "market"].includes(orderType)) errors.order_type = "order type must be limit or market";
  if (!["GTC", "IOC", "FOK"].includes(timeInForce)) errors.time_in_force = "time in force must be GTC, IOC or FOK";
  if (symbol && !SYMBOL.test(symbol)) errors.symbol = "symbol must be letters and digits, e.g. BTCUSDT";
  const qtyError = positive(qty, "quantity");
  if (qtyError) errors.qty = qtyError;
  if (orderType === "limit") {
    const priceError = positive(price, "price");
    if (priceError) errors.price = price ? priceError : "price is required for limit orders";
  }
  if (clientOrderId && !CLIENT_ORDER_ID.test(clientOrderId)) {
    errors.client_order_id = "client order id: 1 to 64 printable characters, no spaces";
  }

  const order = { side, symbol: symbol || undefined, qty, order_type: orderType, time_in_force: timeInForce };
  if (orderType === "limit") order.price = price;
  if (clientOrderId) order.client_order_id = clientOrderId;
  return { order, errors };
}
