"""What `scripts/images` prints: sizes and times as people read them."""

from __future__ import annotations

from collections.abc import Sequence

from torchyard.imagebuild.build import Built


def format_size(size: int) -> str:
    """Bytes in decimal units, as podman and docker print image sizes: 176995840 -> 177 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{size} B"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def format_seconds(seconds: float) -> str:
    """75.2 -> '1 min 15 s'; 4.4 -> '4.4 s'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def summary(built: Sequence[Built]) -> list[str]:
    """One line per image: its tag, ID, size, and whether it was built or up to date."""
    lines = []
    for item in built:
        how = (
            "up to date (inputs unchanged)"
            if item.seconds is None
            else f"built in {format_seconds(item.seconds)}"
        )
        lines.append(f"{item.image.tag}  {item.id[:12]}  {format_size(item.size)}  {how}")
    return lines
