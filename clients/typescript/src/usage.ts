// A small typed client written against the types generated from openapi/openapi.json.
// `tsc --noEmit` must accept it: if an operation, field or type changes incompatibly, it fails.
import type { components, paths } from "veloz-api";

type Schemas = components["schemas"];
type Json<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { "application/json": infer T } } };
}
  ? T
  : never;

export type OrderRequest = Schemas["OrderRequest"];
export type OrderState = Json<"/api/order_state", "get", 200>;
export type TokenPair = Json<"/api/auth/login", "post", 200>;
export type ApiError = Schemas["ErrorResponse"];

export class GatewayClient {
  constructor(
    private readonly baseUrl: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  static withToken(baseUrl: string, token: TokenPair["access_token"]): GatewayClient {
    return new GatewayClient(baseUrl, { Authorization: `Bearer ${token}` });
  }

  static withApiKey(baseUrl: string, key: Json<"/api/auth/keys", "post", 201>["api_key"]): GatewayClient {
    return new GatewayClient(baseUrl, { "X-API-Key": key });
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: { "Content-Type": "application/json", ...this.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data: unknown = await response.json();
    if (!response.ok) {
      const error = data as ApiError;
      throw new Error(`${response.status} ${error.error}: ${error.message ?? ""}`);
    }
    return data as T;
  }

  login(body: Schemas["LoginRequest"]): Promise<TokenPair> {
    return this.send("POST", "/api/auth/login", body);
  }

  placeOrder(body: OrderRequest): Promise<Json<"/api/order", "post", 200>> {
    return this.send("POST", "/api/order", body);
  }

  cancel(body: Schemas["CancelRequest"]): Promise<Json<"/api/cancel", "post", 200>> {
    return this.send("POST", "/api/cancel", body);
  }

  orderState(clientOrderId: string): Promise<OrderState> {
    return this.send("GET", `/api/order_state?client_order_id=${encodeURIComponent(clientOrderId)}`);
  }

  createKey(body: Schemas["ApiKeyCreate"]): Promise<Json<"/api/auth/keys", "post", 201>> {
    return this.send("POST", "/api/auth/keys", body);
  }

  auditLogs(): Promise<Json<"/api/audit/logs", "get", 200>> {
    return this.send("GET", "/api/audit/logs");
  }
}

export async function buyAndWatch(client: GatewayClient): Promise<number> {
  const placed = await client.placeOrder({ side: "BUY", symbol: "BTCUSDT", qty: 0.001, price: 41000 });
  const state = await client.orderState(placed.client_order_id);
  const executed: number = state.executed_qty;
  const logs = await client.auditLogs();
  const actions: string[] = logs.logs.map((entry) => entry.action);
  return executed + actions.length;
}

// The generated types must be strict enough to refuse these.
// @ts-expect-error side is BUY or SELL
const badSide: OrderRequest = { side: "HOLD", qty: 1, price: 1 };
// @ts-expect-error qty is required
const noQty: OrderRequest = { side: "BUY", price: 1 };
// @ts-expect-error the order state's executed_qty is a number
const wrongType: string = ({} as OrderState).executed_qty;
// @ts-expect-error roles are viewer, trader or admin
const badRole: Schemas["UserCreate"] = { user_id: "a", password: "long-enough", roles: ["root"] };
export const refused = [badSide, noQty, wrongType, badRole];
