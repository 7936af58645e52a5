// The live event stream (GET /api/stream, Server-Sent Events).
//
// Every event carries an increasing id. The last one seen is kept; when the connection drops
// the stream is reopened with `?last_id=<it>`, so the gateway replays exactly what was missed,
// and anything at or below it (a replay overlap) is ignored: no event is applied twice.

export const EVENT_TYPES = ["engine_started", "market", "order_update", "fill", "order_state", "account", "error"];
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export class LiveStream {
  constructor({ onEvent, onStatus, onOpen }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onOpen = onOpen;
    this.lastId = null;
    this.source = null;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
    this.onStatus("offline");
  }

  open() {
    const url = this.lastId === null ? "/api/stream" : `/api/stream?last_id=${this.lastId}`;
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      this.retryMs = RETRY_MIN_MS;
      this.onStatus("live");
      this.onOpen();
    };
    source.onerror = () => {
      // Reconnect by hand so the resume point is always our own last id.
      source.close();
      if (this.source !== source || this.stopped) return;
      this.source = null;
      this.onStatus("reconnecting");
      this.timer = setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => this.receive(type, message));
    }
  }

  receive(type, message) {
    const id = Number(message.lastEventId);
    if (Number.isFinite(id) && this.lastId !== null && id <= this.lastId) return;
    if (Number.isFinite(id)) this.lastId = id;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    this.onEvent(type, data, Number.isFinite(id) ? id : null);
  }
}
