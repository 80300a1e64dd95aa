"""Reports of evaluation runs, so that the tables and figures people look at come from the
installed package rather than from a script: one self-contained HTML page (`superres
report`), the PSNR-against-time plot as SVG, and side-by-side crops of each method's output.

The input is what `superres eval --json` prints: an object {"model", "scale", "results":
[{"dataset", "images", "psnr", "ssim", "seconds"}]} per model and scale, one per line for
several scales, or a list of them; "channel", "degradation", "tta" (a self-ensemble run) and
"clock" (what "seconds" measured, for runs timed apart from `superres eval`) are optional,
and so is "seconds" (a run without it is tabulated but not plotted). The plot is drawn here
as plain SVG, so a report needs no plotting library and embeds no script.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from superres.data import dataset_images
from superres.evaluation import DatasetResult
from superres.files import atomic_write
from superres.image.degrade import bicubic_lr, modcrop
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler, load
from superres.models import MODELS

EVAL_CLOCK = "wall time in the model, superres eval"
_RESULT_FIELDS = ("dataset", "images", "psnr", "ssim")
_PANEL = (380, 290)  # one plot panel, SVG pixels
_MARGIN = (58, 16, 30, 46)  # left, right, top, bottom
_INTERPOLATION, _LEARNED = "#7f7f7f", "#1f77b4"
_LABEL = 22  # height of a crop sheet's title row, pixels


@dataclass(frozen=True)
class Run:
    """One model at one scale, scored on test sets: one object of `superres eval --json`."""

    model: str
    scale: int
    results: list[DatasetResult]
    channel: str = "y"
    degradation: str = "bicubic"
    tta: bool = False
    clock: str = EVAL_CLOCK

    @property
    def label(self) -> str:
        return f"{self.model} + TTA" if self.tta else self.model


def parse_run(data: Any, source: str = "<json>") -> Run:
    """A Run from one JSON object, checked: a missing or mistyped field is a ValueError that
    names `source`, not a report with holes."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object per run, not {type(data).__name__}")
    for key, kind in (("model", str), ("scale", int), ("results", list)):
        if not isinstance(data.get(key), kind):
            raise ValueError(f"{source}: a run needs {key!r} ({kind.__name__})")
    degradation = data.get("degradation", "bicubic")
    return Run(
        model=data["model"], scale=data["scale"],
        results=[_parse_result(r, f"{source}: {data['model']} x{data['scale']}")
                 for r in data["results"]],
        channel=str(data.get("channel", "y")),
        degradation=degradation if isinstance(degradation, str) else json.dumps(degradation),
        tta=bool(data.get("tta", False)), clock=str(data.get("clock", EVAL_CLOCK)),
    )


def _parse_result(data: Any, source: str) -> DatasetResult:
    if not isinstance(data, dict) or any(key not in data for key in _RESULT_FIELDS):
        raise ValueError(f"{source}: each result needs {', '.join(_RESULT_FIELDS)}")
    extra = {k: float(v) for k, v in data.items() if k not in (*_RESULT_FIELDS, "seconds")
             and isinstance(v, int | float) and not isinstance(v, bool)}
    seconds = data.get("seconds")
    return DatasetResult(dataset=str(data["dataset"]), images=int(data["images"]),
                         psnr=float(data["psnr"]), ssim=float(data["ssim"]),
                         seconds=math.nan if seconds is None else float(seconds), extra=extra)


def read_runs(paths: Iterable[str | Path]) -> list[Run]:
    """The runs in JSON files ("-": standard input): each file one object, a list of them,
    or one object per line, as `superres eval --json` prints several scales."""
    runs = []
    for path in paths:
        source = str(path)
        text = sys.stdin.read() if source == "-" else Path(path).read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                data = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as err:
                raise ValueError(f"{source}: not JSON ({err})") from None
        runs.extend(parse_run(item, source) for item in (data if isinstance(data, list)
                                                         else [data]))
    if not runs:
        raise ValueError("no runs in the given files")
    return runs


def ms_per_image(result: DatasetResult) -> float:
    """Milliseconds per image (NaN for an untimed result, which no comparison passes)."""
    return result.seconds * 1000 / result.images if result.images else math.nan


# ---------------------------------------------------------------- tables


Group = tuple[str, int, str, str]  # dataset, scale, channel, degradation


def groups(runs: Sequence[Run]) -> dict[Group, list[tuple[Run, DatasetResult]]]:
    """Results that compare: one test set at one scale, with one protocol, in run order."""
    found: dict[Group, list[tuple[Run, DatasetResult]]] = {}
    for run in runs:
        for result in run.results:
            key = (result.dataset, run.scale, run.channel, run.degradation)
            found.setdefault(key, []).append((run, result))
    return found


def _group_title(group: Group) -> str:
    dataset, scale, channel, degradation = group
    lr = "" if degradation == "bicubic" else f", LR by {degradation}"
    return f"{dataset} x{scale} ({channel.upper() if channel == 'y' else channel}{lr})"


def _table(rows: list[tuple[Run, DatasetResult]]) -> str:
    extras = list(dict.fromkeys(k for _, r in rows for k in r.extra))
    bicubic = next((ms_per_image(r) for run, r in rows
                    if run.model == "bicubic" and not run.tta), math.nan)
    head = ["method", "PSNR (dB)", "SSIM", *extras, "images", "ms per image"]
    if bicubic > 0:
        head.append("time / bicubic")
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for run, result in rows:
        ms = ms_per_image(result)
        cells = [f"{result.psnr:.2f}", f"{result.ssim:.4f}",
                 *(f"{result.extra[k]:.4f}" if k in result.extra else "–" for k in extras),
                 str(result.images), _ms(ms)]
        if bicubic > 0:
            cells.append("–" if math.isnan(ms) else f"{ms / bicubic:.1f}")
        lines.append(f"<tr><th>{html.escape(run.label)}</th>"
                     + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _ms(ms: float) -> str:
    if math.isnan(ms):
        return "–"
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


# ---------------------------------------------------------------- plot


def psnr_time_svg(runs: Sequence[Run], *, standalone: bool = False, columns: int = 3) -> str:
    """PSNR against milliseconds per image (log axis), one panel per test set and scale,
    as SVG: inline in a page, or a file of its own with `standalone`. Interpolation is grey,
    learned models blue."""
    panels = [(group, rows) for group, rows in groups(runs).items()
              if any(ms_per_image(r) > 0 for _, r in rows)]
    if not panels:
        raise ValueError("no timed results to plot (their 'seconds' are missing)")
    width, height = _PANEL
    across = min(columns, len(panels))
    down = -(-len(panels) // across)
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    parts = [f'<svg{namespace} width="{width * across}" height="{height * down}" '
             f'viewBox="0 0 {width * across} {height * down}" font-family="sans-serif" '
             f'font-size="11" role="img"><title>PSNR against time per image</title>',
             f'<rect width="{width * across}" height="{height * down}" fill="white"/>']
    for i, (group, rows) in enumerate(panels):
        parts.append(_panel(group, rows, (i % across) * width, (i // across) * height))
    parts.append("</svg>")
    return "\n".join(parts)


def _panel(group: Group, rows: list[tuple[Run, DatasetResult]], x0: int, y0: int) -> str:
    """One panel at (x0, y0): axes, ticks, grid, points and their labels."""
    points = [(run, math.log10(ms_per_image(r)), r.psnr) for run, r in rows
              if ms_per_image(r) > 0]
    width, height = _PANEL
    left, right, top, bottom = _MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    # Room on the right for the labels, as matplotlib's margins would give.
    x_low, x_high = min(xs) - 0.15, max(xs) + 0.15 + 0.3 * max(max(xs) - min(xs), 0.5)
    y_step = _nice_step(max(ys) - min(ys))
    y_low = math.floor(min(ys) / y_step - 0.5) * y_step
    y_high = math.ceil(max(ys) / y_step + 0.5) * y_step

    def px(value: float) -> float:
        return x0 + left + (value - x_low) / (x_high - x_low) * plot_w

    def py(value: float) -> float:
        return y0 + top + (y_high - value) / (y_high - y_low) * plot_h

    out = [f'<g><text x="{x0 + left + plot_w / 2:.1f}" y="{y0 + top - 10}" '
           f'text-anchor="middle" font-size="13">{html.escape(_group_title(group))}</text>',
           f'<rect x="{x0 + left}" y="{y0 + top}" width="{plot_w}" height="{plot_h}" '
           f'fill="none" stroke="#333"/>']
    for tick in _log_ticks(x_low, x_high):
        x = px(math.log10(tick))
        out.append(f'<line x1="{x:.1f}" y1="{y0 + top}" x2="{x:.1f}" y2="{y0 + top + plot_h}" '
                   f'stroke="#ddd"/><text x="{x:.1f}" y="{y0 + top + plot_h + 14}" '
                   f'text-anchor="middle">{tick:g}</text>')
    steps = round((y_high - y_low) / y_step)
    for k in range(steps + 1):
        value = y_low + k * y_step
        y = py(value)
        out.append(f'<line x1="{x0 + left}" y1="{y:.1f}" x2="{x0 + left + plot_w}" '
                   f'y2="{y:.1f}" stroke="#ddd"/><text x="{x0 + left - 5}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{value:.{_decimals(y_step)}f}</text>')
    clock = html.escape(rows[0][0].clock)
    out.append(f'<text x="{x0 + left + plot_w / 2:.1f}" y="{y0 + height - 10}" '
               f'text-anchor="middle">ms per image ({clock})</text>')
    out.append(f'<text transform="translate({x0 + 16} {y0 + top + plot_h / 2:.1f}) '
               f'rotate(-90)" text-anchor="middle">PSNR (dB)</text>')
    for run, x, y in points:
        spec = MODELS.get(run.model)
        colour = _INTERPOLATION if spec and spec.framework == "interpolation" else _LEARNED
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{colour}"/>'
                   f'<text x="{px(x) + 7:.1f}" y="{py(y) + 4:.1f}">'
                   f'{html.escape(run.label)}</text>')
    out.append("</g>")
    return "\n".join(out)


def _nice_step(span: float) -> float:
    """A round tick step giving about four to eight ticks over `span`."""
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10):
        if span / step <= 6:
            return step
    return 10 ** math.ceil(math.log10(span / 5))


def _decimals(step: float) -> int:
    return len(f"{step:g}".partition(".")[2])


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick values between 10**low and 10**high: the decades, with 2 and 5 between them
    when the axis spans less than two decades."""
    multiples = (1, 2, 5) if high - low < 2 else (1,)
    return [m * 10.0**e for e in range(math.floor(low), math.ceil(high) + 1)
            for m in multiples if low <= math.log10(m * 10.0**e) <= high]


# ---------------------------------------------------------------- crops


@dataclass(frozen=True)
class CropRow:
    """One row of a crop sheet: an HR image (modcropped to the scale) and the top-left
    corner of the window shown from it."""

    name: str
    hr: np.ndarray
    top: int
    left: int


def image_crop_row(path: str | Path, scale: int, window: tuple[int, int] | None = None,
                   crop: int = 96) -> CropRow:
    """A crop row from an image file: at `window` (top, left), or else where the image has
    the most detail (gradient energy), which is where methods differ."""
    hr = modcrop(read_image(path).pixels, scale)
    top, left = window if window is not None else detailed_window(hr, crop)
    return CropRow(Path(path).stem, hr, top, left)


def dataset_crop_rows(dataset: str, scale: int,
                      windows: Mapping[str, tuple[int, int]]) -> list[CropRow]:
    """Crop rows from a test set, image name -> (top, left), for the images it holds."""
    _, paths = dataset_images(dataset)
    by_name = {p.stem: p for p in paths}
    rows = [image_crop_row(by_name[name], scale, window) for name, window in windows.items()
            if name in by_name]
    if not rows:
        raise ValueError(f"{dataset} holds none of the images {', '.join(windows)}")
    return rows


def detailed_window(image: np.ndarray, crop: int) -> tuple[int, int]:
    """(top, left) of the `crop` x `crop` window with the most gradient energy."""
    gray = image.astype(np.float32).mean(axis=2) if image.ndim == 3 else image.astype(np.float32)
    energy = np.zeros_like(gray)
    energy[:, 1:] += np.abs(np.diff(gray, axis=1))
    energy[1:] += np.abs(np.diff(gray, axis=0))
    height, width = gray.shape
    crop_h, crop_w = min(crop, height), min(crop, width)
    total = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (total[crop_h:, crop_w:] - total[:-crop_h, crop_w:] - total[crop_h:, :-crop_w]
            + total[:-crop_h, :-crop_w])
    top, left = np.unravel_index(int(sums.argmax()), sums.shape)
    return int(top), int(left)


def tile_sheet(titles: Sequence[str], rows: Sequence[Sequence[np.ndarray]], *, crop: int,
               zoom: int = 2) -> Image.Image:
    """One titled column per method: each row's tiles (windows of at most `crop` pixels)
    enlarged `zoom` x by nearest neighbour, so that no resampling hides what a method did."""
    side = crop * zoom
    sheet = Image.new("RGB", (side * len(titles), _LABEL + side * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for column, title in enumerate(titles):
        draw.text((column * side + side / 2, _LABEL / 2), title, fill="black", font=font,
                  anchor="mm")
    for row, tiles in enumerate(rows):
        for column, pixels in enumerate(tiles):
            tile = Image.fromarray(np.squeeze(pixels)).convert("RGB")
            sheet.paste(tile.resize((tile.width * zoom, tile.height * zoom), Image.NEAREST),
                        (column * side, _LABEL + row * side))
    return sheet


def crop_sheet(upscalers: Mapping[str, Upscaler], rows: Sequence[CropRow], *, crop: int = 96,
               zoom: int = 2) -> Image.Image:
    """Each row's window from every method's output on the bicubic-downscaled image (as
    `superres eval` makes it), then from HR, enlarged `zoom` x (`tile_sheet`); titled by
    method."""
    scales = {u.scale for u in upscalers.values()}
    if len(scales) != 1:
        raise ValueError(f"the methods of one crop sheet need one scale, not {sorted(scales)}")
    (scale,) = scales
    tiles = []
    for found in rows:
        lr = bicubic_lr(found.hr, scale)
        window = (slice(found.top, found.top + crop), slice(found.left, found.left + crop))
        tiles.append([u.upscale(lr)[window] for u in upscalers.values()] + [found.hr[window]])
    return tile_sheet([*upscalers, "HR"], tiles, crop=crop, zoom=zoom)


# ---------------------------------------------------------------- page


def report_html(runs: Sequence[Run], *, crops: Image.Image | None = None,
                title: str = "superres report", sources: Sequence[str] = ()) -> str:
    """One HTML page that holds everything (styles, the SVG plot, the crops as a data: URI)
    and refers to nothing outside it: it can be mailed, archived or opened offline."""
    timed = any(ms_per_image(r) > 0 for run in runs for r in run.results)
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>Made by superres {version('superres')}"
            + (f" from {html.escape(', '.join(sources))}" if sources else "") + ". PSNR and "
            "SSIM as `superres eval` measures them (MATLAB bicubic LR unless said, the scale "
            "in pixels shaved); time per image as each run measured it.</p>"]
    if timed:
        body += ["<h2>Quality against time</h2>", psnr_time_svg(runs)]
    body.append("<h2>Scores</h2>")
    for group, rows in groups(runs).items():
        body += [f"<h3>{html.escape(_group_title(group))}</h3>", _table(rows)]
    clocks = sorted({run.clock for run in runs})
    body.append(f"<p>Time: {html.escape('; '.join(clocks))}.</p>")
    if crops is not None:
        encoded = io.BytesIO()
        crops.save(encoded, "PNG", optimize=True)
        data = base64.b64encode(encoded.getvalue()).decode("ascii")
        body += ["<h2>Crops</h2>", f'<img src="data:image/png;base64,{data}" '
                 f'width="{crops.width}" height="{crops.height}" '
                 'alt="The same window from each method\'s output, then from HR">']
    style = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "th,td{padding:.25em .8em;border-bottom:1px solid #ddd}"
             "td{text-align:right;font-variant-numeric:tabular-nums}"
             "th{text-align:left}svg,img{max-width:100%;height:auto}")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_text(path: str | Path, text: str) -> Path:
    """Write a report or a figure atomically: a reader never sees half of one."""
    return atomic_write(Path(path), lambda file: file.write(text.encode("utf-8")))


def parse_crop(text: str) -> tuple[Path, tuple[int, int] | None]:
    """IMAGE or IMAGE@TOP,LEFT (the window's corner in HR pixels) -> path and window."""
    path, at, corner = text.rpartition("@")
    if at and corner.replace(",", "").isdigit() and corner.count(",") == 1:
        top, left = (int(v) for v in corner.split(","))
        return Path(path), (top, left)
    return Path(text), None


def write_report(results: Sequence[str | Path], output: str | Path, *,
                 crops: Sequence[str] = (), models: Sequence[str] = (),
                 scale: int | None = None, title: str = "superres report",
                 plot: str | Path | None = None, crop_sheet_path: str | Path | None = None,
                 device: str = "cpu") -> list[Path]:
    """What `superres report` does: the page from `results` (JSON files), with crops of the
    `crops` images (IMAGE or IMAGE@TOP,LEFT) by `models` (default: the runs' models at
    `scale`, itself the runs' scale when they have one), and optionally the plot and the
    crop sheet as files of their own. Returns the files written."""
    if crop_sheet_path is not None and not crops:
        raise ValueError("a crop sheet needs --crops IMAGE")
    runs = read_runs(results)
    sheet = None
    if crops:
        if scale is None:
            scales = sorted({run.scale for run in runs})
            if len(scales) > 1:
                raise ValueError(f"the runs have scales {scales}: choose the crops' scale")
            scale = scales[0]
        methods = {name: load(name, scale, device, tile=512) for name in models} or {
            run.label: load(run.model, scale, device, tile=512, tta=run.tta)
            for run in runs if run.scale == scale}
        if not methods:
            raise ValueError(f"no runs at x{scale} to take the crops' methods from; name them")
        windows = [parse_crop(text) for text in crops]
        sheet = crop_sheet(methods, [image_crop_row(path, scale, window)
                                     for path, window in windows])
    sources = ["standard input" if str(r) == "-" else Path(r).name for r in results]
    written = [write_text(output, report_html(runs, crops=sheet, title=title, sources=sources))]
    if plot is not None:
        written.append(write_text(plot, psnr_time_svg(runs, standalone=True)))
    if crop_sheet_path is not None and sheet is not None:
        written.append(atomic_write(Path(crop_sheet_path),
                                    lambda file: sheet.save(file, "PNG", optimize=True)))
    return written
