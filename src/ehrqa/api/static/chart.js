// A small SVG line chart for one lab over time, drawn without a chart library.
import { s } from "./dom.js";

const DAY_MS = 86400000;

/** Round tick values covering [min, max], about `count` of them. */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / Math.max(1, count - 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= raw);
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Number(v.toFixed(10)));
  }
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toFixed(10)));
  return ticks;
}

/**
 * Where each point goes in a `width` × `height` box with `pad` margins:
 * {dots: [{x, y, point}], path, yTicks: [{y, value}], xTicks: [{x, label}]}.
 * `points` are {date: "YYYY-MM-DD…", value: number}; they are sorted by date here.
 */
export function chartGeometry(points, { width = 640, height = 240, pad = 40 } = {}) {
  const sorted = points
    .map((p) => ({ ...p, time: Date.parse(p.date.slice(0, 10)) }))
    .filter((p) => Number.isFinite(p.time) && Number.isFinite(p.value))
    .sort((a, b) => a.time - b.time);
  if (!sorted.length) return { dots: [], path: "", yTicks: [], xTicks: [] };
  const ticks = niceTicks(Math.min(...sorted.map((p) => p.value)), Math.max(...sorted.map((p) => p.value)));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const t0 = sorted[0].time;
  const span = Math.max(sorted[sorted.length - 1].time - t0, DAY_MS);
  const x = (time) => pad + ((time - t0) / span) * (width - 2 * pad);
  const y = (value) => height - pad - ((value - lo) / (hi - lo)) * (height - 2 * pad);
  const dots = sorted.map((p) => ({ x: round(x(p.time)), y: round(y(p.value)), point: p }));
  const path = dots.map((d, i) => `${i ? "L" : "M"}${d.x},${d.y}`).join(" ");
  return { dots, path, yTicks: ticks.map((v) => ({ y: round(y(v)), value: v })), xTicks: yearTicks(sorted, x) };
}

function yearTicks(sorted, x) {
  const first = new Date(sorted[0].time).getUTCFullYear();
  const last = new Date(sorted[sorted.length - 1].time).getUTCFullYear();
  const every = Math.max(1, Math.ceil((last - first + 1) / 8));
  const ticks = [];
  for (let year = first; year <= last; year += every) {
    const time = Math.max(Date.UTC(year, 0, 1), sorted[0].time);
    ticks.push({ x: round(x(time)), label: String(year) });
  }
  return ticks;
}

function round(v) {
  return Math.round(v * 10) / 10;
}

/**
 * An <svg> line chart of `points` ({date, value, ref, flag}); onPick(point, element) is
 * called when a dot is chosen by a click or with Enter/Space (each dot is a focusable
 * button). `label` and `unit` name the lab; `describe(point)` gives a dot's spoken text.
 */
export function lineChart(points, { label, unit = "", onPick = null, describe = null, width = 640, height = 240 } = {}) {
  const pad = 40;
  const geo = chartGeometry(points, { width, height, pad });
  const latest = geo.dots.length ? geo.dots[geo.dots.length - 1].point : null;
  const say = describe || ((p) => `${p.date.slice(0, 10)}: ${p.value} ${unit}`.trim());
  const summary = latest ? `${label}: ${geo.dots.length} results; latest ${say(latest)}` : `${label}: no numeric results`;
  return s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "group", "aria-label": summary },
    s("title", {}, summary),
    geo.yTicks.map((t) => s("g", { class: "tick", "aria-hidden": "true" },
      s("line", { x1: pad, x2: width - pad, y1: t.y, y2: t.y }),
      s("text", { x: pad - 6, y: t.y + 4, "text-anchor": "end" }, String(t.value)))),
    geo.xTicks.map((t) => s("text", { class: "xtick", x: t.x, y: height - pad + 18, "text-anchor": "middle", "aria-hidden": "true" }, t.label)),
    s("path", { class: "line", d: geo.path, fill: "none", "aria-hidden": "true" }),
    geo.dots.map((d) => dot(d, say(d.point), onPick)));
}

function dot(d, text, onPick) {
  const flag = d.point.flag === "high" || d.point.flag === "low" ? ` ${d.point.flag}` : "";
  const attrs = { class: `dot${flag}`, cx: d.x, cy: d.y, r: 5 };
  if (onPick) {
    const pick = (event) => onPick(d.point, event.currentTarget);
    Object.assign(attrs, {
      class: `dot pickable${flag}`, tabindex: "0", role: "button", "aria-label": text, onclick: pick,
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(event); } },
    });
  }
  return s("circle", attrs, s("title", {}, text));
}
