"""The rollout drawn: a self-contained HTML page (inline SVG, no script, no network).

Top: each version's traffic weight over time as the operator set it (status.weight,
lines) and the share of requests each version really answered (dots, from the traffic
clients). Bottom: the clients' error rate. Vertical marks: the rollout's moments. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from torchyard.local.quickstart.timeline import Timeline, error_rate, served_share

WIDTH, PANEL, MARGIN_X, MARGIN_Y = 860, 220, 56, 34
COLOURS = ("#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8172b3", "#937860")


def render(model: str, timeline: Timeline, marks: Sequence[tuple[float, str]], title: str) -> str:
    versions = sorted(v for v in timeline.weights if v.startswith(f"{model}-v"))
    end = max(
        [at for series in timeline.weights.values() for at, _ in series]
        + [w.at for w in timeline.traffic]
        + [at for at, _ in marks]
        + [1.0]
    )
    start = min([at for v in versions for at, _ in timeline.weights[v]] or [0.0])
    start = max(0.0, start - 10.0)
    span = max(end - start, 1.0) * 1.03

    def x(at: float) -> float:
        return MARGIN_X + (WIDTH - 2 * MARGIN_X) * (at - start) / span

    def y(percent: float, top: float) -> float:
        return top + PANEL - PANEL * max(0.0, min(percent, 100.0)) / 100.0

    colour = {v: COLOURS[i % len(COLOURS)] for i, v in enumerate(versions)}
    label = {v: "v" + v[len(model) + 2 :] for v in versions}
    svg: list[str] = []
    top1, top2 = MARGIN_Y, MARGIN_Y * 3 + PANEL
    for top, caption in ((top1, "traffic weight %"), (top2, "client error rate %")):
        svg += _axes(top, caption, start, span)
    for version in versions:
        points = _steps(timeline.weights[version], end)
        path = " ".join(f"{x(at):.1f},{y(w, top1):.1f}" for at, w in points)
        svg.append(
            f'<polyline points="{path}" fill="none" stroke="{colour[version]}" stroke-width="2.5"/>'
        )
    for window in timeline.traffic:
        if window.at < start:
            continue
        for answered, share in served_share(window).items():
            name = f"{model}-v{answered}"
            if name in colour:
                svg.append(
                    f'<circle cx="{x(window.at):.1f}" cy="{y(share, top1):.1f}" r="3" '
                    f'fill="{colour[name]}" fill-opacity="0.55"/>'
                )
    errors = [(w.at, error_rate(w)) for w in timeline.traffic if w.at >= start]
    if errors:
        path = " ".join(f"{x(at):.1f},{y(rate, top2):.1f}" for at, rate in errors)
        svg.append(f'<polyline points="{path}" fill="none" stroke="#c44e52" stroke-width="2"/>')
    for index, (at, text) in enumerate(sorted(marks)):
        # Labels sit between the panels, alternating rows so that close marks stay legible.
        row = top1 + PANEL + 30 + 12 * (index % 2)
        svg.append(
            f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top1}" y2="{top2 + PANEL}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
            f'<text x="{x(at) + 3:.1f}" y="{row}" font-size="11" fill="#444">{escape(text)}</text>'
        )
    legend = " ".join(
        f'<span style="color:{colour[v]}">&#9632; {escape(label[v])}</span>' for v in versions
    )
    height = top2 + PANEL + MARGIN_Y + 10
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:24px;color:#222}"
        "p{max-width:860px}</style></head><body>"
        f"<h2>{escape(title)}</h2>"
        f"<p>{legend} &nbsp; lines: weight the operator set (status.weight); dots: share of "
        "requests each version answered, as the traffic clients saw it every few seconds; "
        "bottom: requests that failed or got no answer.</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">'
        + "".join(svg)
        + "</svg></body></html>\n"
    )


def _steps(series: list[tuple[float, int]], end: float) -> list[tuple[float, float]]:
    """A weight held until it changes: the points of a step line."""
    points: list[tuple[float, float]] = []
    for index, (at, weight) in enumerate(series):
        if index:
            points.append((at, float(series[index - 1][1])))
        points.append((at, float(weight)))
    if series:
        points.append((end, float(series[-1][1])))
    return points


def _axes(top: float, caption: str, start: float, span: float) -> list[str]:
    left, right = MARGIN_X, WIDTH - MARGIN_X
    parts = [
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{PANEL}" fill="#fafafa" '
        'stroke="#ccc"/>',
        f'<text x="{left}" y="{top - 8}" font-size="12" fill="#333">{escape(caption)}</text>',
    ]
    for percent in (0, 50, 100):
        level = top + PANEL - PANEL * percent / 100
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{level}" y2="{level}" stroke="#e6e6e6"/>'
            f'<text x="{left - 6}" y="{level + 4}" font-size="11" text-anchor="end">'
            f"{percent}</text>"
        )
    step = 30.0 if span <= 300 else 60.0
    tick = (start // step + 1) * step
    while tick < start + span:
        position = left + (right - left) * (tick - start) / span
        minutes, seconds = divmod(int(tick), 60)
        parts.append(
            f'<text x="{position:.1f}" y="{top + PANEL + 14}" font-size="11" '
            f'text-anchor="middle">{minutes}:{seconds:02d}</text>'
        )
        tick += step
    return parts
