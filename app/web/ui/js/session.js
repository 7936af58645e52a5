// Login state: tokens from POST /api/auth/login, renewed before they expire with
// /api/auth/refresh, dropped by logout. Kept in sessionStorage so a reload stays signed in.

import { ApiError } from "./api.js";

const STORAGE_KEY = "veloz.session";
const MIN_REFRESH_DELAY_MS = 1000;

export class Session {
  constructor() {
    this.state = load();
    this.timer = null;
    this.pending = null;
    this.onExpired = () => {};
  }

  user() { return this.state ? this.state.user : null; }
  accessToken() { return this.state ? this.state.access : null; }
  canRefresh() { return Boolean(this.state && this.state.refresh); }
  // The access token has outlived `expires_in` (the page slept): sending it would be refused.
  accessExpired() {
    if (!this.state) return false;
    return Date.now() >= (this.state.obtainedAt || 0) + (this.state.expiresIn || 0) * 1000;
  }

  async login(userId, password) {
    const response = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ user_id: userId, password }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    this.store({ user: userId, access: body.access_token, refresh: body.refresh_token, expiresIn: body.expires_in });
  }

  // One refresh at a time; true when a new access token was obtained.
  refresh() {
    if (!this.pending) {
      this.pending = this.doRefresh().finally(() => { this.pending = null; });
    }
    return this.pending;
  }

  async doRefresh() {
    if (!this.canRefresh()) return false;
    const state = this.state;
    try {
      const response = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: state.refresh }),
      });
      if (this.state !== state) return false; // signed out (or in again) meanwhile
      if (!response.ok) {
        if (response.status === 400 || response.status === 401) this.expired();
        return false;
      }
      const body = await response.json();
      if (this.state !== state) return false;
      this.store({
        ...state,
        access: body.access_token,
        refresh: body.refresh_token || state.refresh,
        expiresIn: body.expires_in,
      });
      return true;
    } catch {
      this.schedule(5); // the gateway is unreachable: try again shortly
      return false;
    }
  }

  async logout() {
    const state = this.state;
    this.clear();
    if (!state || !state.refresh) return;
    try {
      await fetch("/api/auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.access}` },
        body: JSON.stringify({ refresh_token: state.refresh }),
      });
    } catch {
      // Signed out locally either way; the tokens expire on their own.
    }
  }

  expired() {
    if (!this.state) return;
    this.clear();
    this.onExpired();
  }

  store(state) {
    this.state = { ...state, obtainedAt: Date.now() };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.state));
    this.schedule(renewAfter(state.expiresIn));
  }

  schedule(delaySeconds) {
    clearTimeout(this.timer);
    if (!this.state) return;
    const delay = Math.max(MIN_REFRESH_DELAY_MS, delaySeconds * 1000);
    this.timer = setTimeout(() => this.refresh(), delay);
  }

  // After a reload: renew now if the token is in its last quarter, else when it gets there.
  resume() {
    if (!this.state) return;
    const lifetime = this.state.expiresIn || 0;
    const age = (Date.now() - (this.state.obtainedAt || 0)) / 1000;
    this.schedule(renewAfter(lifetime) - age);
  }

  clear() {
    clearTimeout(this.timer);
    this.state = null;
    sessionStorage.removeItem(STORAGE_KEY);
  }
}

// Renew at three quarters of the token's lifetime, well before it runs out.
function renewAfter(lifetimeSeconds) {
  return (lifetimeSeconds || 0) * 0.75;
}

function load() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}
