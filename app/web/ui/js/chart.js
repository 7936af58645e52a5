// A hand-drawn SVG line chart of recent prices.

const SVG = "http://www.w3.org/2000/svg";
const PAD_RIGHT = 70; // room for the price labels

function node(tag, attrs) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  return element;
}

// Drawn at the container's own size, so text is never stretched.
export function drawChart(container, points, format) {
  const WIDTH = Math.max(container.clientWidth, 200);
  const HEIGHT = Math.max(container.clientHeight, 100);
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, "aria-hidden": "true" });
  if (points.length >= 2) {
    let low = Infinity;
    let high = -Infinity;
    for (const p of points) {
      low = Math.min(low, p.price);
      high = Math.max(high, p.price);
    }
    const span = high - low || Math.abs(high) * 0.001 || 1;
    const top = high + span * 0.1;
    const bottom = low - span * 0.1;
    const plotWidth = WIDTH - PAD_RIGHT;
    const x = (i) => (i / (points.length - 1)) * plotWidth;
    const y = (price) => HEIGHT - ((price - bottom) / (top - bottom)) * HEIGHT;
    for (const value of [high, low]) {
      svg.append(node("line", { class: "grid", x1: 0, x2: plotWidth, y1: y(value), y2: y(value) }));
      const label = node("text", { x: plotWidth + 6, y: y(value) + 4 });
      label.textContent = format(value);
      svg.append(label);
    }
    const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(p.price).toFixed(1)}`);
    svg.append(node("polygon", { class: "area", points: `0,${HEIGHT} ${coords.join(" ")} ${plotWidth},${HEIGHT}` }));
    svg.append(node("polyline", { class: "line", points: coords.join(" ") }));
  }
  container.replaceChildren(svg);
  container.dataset.points = String(points.length);
}
