// The HTTP API client: bearer token, JSON errors, and Server-Sent Events over fetch
// (EventSource cannot POST, so the stream is read from the response body).

/** An error answer from the API: HTTP status, error class and the server's message. */
export class ApiError extends Error {
  constructor(status, error, message) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

/** What to tell the user for an API error (401/403 get their own wording). */
export function describeError(err) {
  if (err && err.name === "AbortError") return "Stopped.";
  if (!(err instanceof ApiError)) {
    return `The service could not be reached (${err && err.message ? err.message : err}).`;
  }
  if (err.status === 401) {
    return "The token was not accepted: it is unknown, mistyped or revoked. Sign in again.";
  }
  if (err.status === 403) {
    if (/clinician/.test(err.message)) return "Decision support is for clinicians' tokens.";
    return "This token is not allowed to see that patient. Ask for a token that covers it.";
  }
  return `${err.message} (HTTP ${err.status})`;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  const error = (body && body.error) || "HTTPError";
  let message = body && (body.message || body.detail);
  if (Array.isArray(message)) message = message.map((d) => d.msg || String(d)).join("; ");
  return new ApiError(response.status, error, message || response.statusText || "request failed");
}

/** Calls the /v1 routes with an optional bearer token. */
export class ApiClient {
  constructor(token = null, fetchImpl = (...args) => fetch(...args)) {
    this.token = token;
    this.fetch = fetchImpl;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  /** GET `path` and return its JSON; throws ApiError on an error status. */
  async get(path, signal) {
    const response = await this.fetch(path, { headers: this.headers(), signal });
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  /** POST `body` as JSON to `path` and return the JSON answer. */
  async post(path, body, signal) {
    const response = await this.fetch(path, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await errorFrom(response);
    return response.json();
  }

  /**
   * POST a question with `Accept: text/event-stream` and resolve to the final result.
   * `on.status({stage, records})` is called for progress ("searching", "writing") and
   * `on.answer(answer)` with the checked answer to show at once (the `result` may replace
   * it). `token` events of older servers are ignored: nothing unchecked is shown. A server
   * that answers with plain JSON is accepted too.
   */
  async askStream(path, body, on = {}, signal) {
    const response = await this.fetch(path, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await errorFrom(response);
    const type = response.headers.get("content-type") || "";
    if (!type.includes("text/event-stream") || !response.body) return response.json();
    return readEvents(response.body, on, response.status);
  }
}

async function readEvents(stream, on, status) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const events = parser.push(done ? decoder.decode() : decoder.decode(value, { stream: true }));
      if (done) events.push(...parser.finish());
      for (const event of events) {
        const outcome = handleEvent(event, on, status);
        if (outcome) return outcome.result;
      }
      if (done) throw new ApiError(status, "StreamError", "the answer stream ended without a result");
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function handleEvent(event, on, status) {
  const data = JSON.parse(event.data);
  if (event.event === "status") {
    if (on.status) on.status(data);
    return null;
  }
  if (event.event === "answer") {
    if (on.answer) on.answer(data);
    return null;
  }
  if (event.event === "result") return { result: data };
  if (event.event === "error") {
    throw new ApiError(status, data.error || "StreamError", data.message || "the answer failed");
  }
  return null; // token (older servers) and unknown events are ignored
}

/**
 * An incremental Server-Sent Events parser: push() text as it arrives and get back the
 * complete events ({event, data}); lines may be split anywhere between pushes.
 */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = "message";
    this.data = [];
  }

  push(text) {
    let complete = this.buffer + text;
    // A trailing "\r" may be half of "\r\n": wait for the next piece before splitting it.
    const held = complete.endsWith("\r") ? "\r" : "";
    if (held) complete = complete.slice(0, -1);
    const lines = complete.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + held;
    const events = [];
    for (const line of lines) this.line(line, events);
    return events;
  }

  finish() {
    const events = [];
    const last = this.buffer.replace(/\r$/, "");
    if (last) this.line(last, events);
    this.buffer = "";
    this.line("", events);
    return events;
  }

  line(line, events) {
    if (line === "") {
      if (this.data.length) events.push({ event: this.event, data: this.data.join("\n") });
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}
