// HTTP calls to the gateway. Every call carries the session's access token; a 401 triggers
// one refresh and one retry. Refusals become ApiError with the API's own code and message.

export class ApiError extends Error {
  constructor(status, body) {
    const code = (body && body.error) || `http_${status}`;
    super((body && body.message) || code);
    this.status = status;
    this.code = code;
    this.details = body ? body.details : undefined;
  }
}

export class Api {
  constructor(session) {
    this.session = session;
  }

  async request(method, path, { body, query } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    let response = await this.send(method, url, body);
    if (response.status === 401 && this.session.canRefresh()) {
      if (await this.session.refresh()) response = await this.send(method, url, body);
    }
    const data = await readJson(response);
    if (!response.ok) {
      if (response.status === 401) this.session.expired();
      throw new ApiError(response.status, data);
    }
    return data;
  }

  send(method, url, body) {
    const headers = { Accept: "application/json" };
    const token = this.session.accessToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body) { return this.request("POST", path, { body }); }
  delete(path, query) { return this.request("DELETE", path, { query }); }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: `http_${response.status}`, message: text.slice(0, 200) };
  }
}

// A user-facing sentence for any failure: the API's message, else its code.
export function describe(error) {
  if (error instanceof ApiError) {
    const fields = Array.isArray(error.details)
      ? error.details.filter((d) => d && d.message).map((d) => (d.field ? `${d.field}: ${d.message}` : d.message))
      : [];
    const head = error.message && error.message !== error.code ? error.message : error.code;
    return fields.length ? `${head} (${fields.join("; ")})` : head;
  }
  return `The gateway could not be reached (${error.message || error}).`;
}
