"""`superres report`: one self-contained HTML file from `superres eval --json` outputs, with
the scores, the PSNR-against-time plot and crops, referring to nothing outside itself."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from superres.cli import EXIT_FAILED, EXIT_OK, main
from superres.report import detailed_window, parse_crop, psnr_time_svg, read_runs

BICUBIC = {"model": "bicubic", "scale": 2, "channel": "y", "degradation": "bicubic",
           "results": [{"dataset": "Set5", "images": 5, "psnr": 33.6818, "ssim": 0.930521,
                        "seconds": 0.0369},
                       {"dataset": "Set14", "images": 14, "psnr": 30.2357, "ssim": 0.869235,
                        "seconds": 0.042}]}
FSRCNN = {"model": "fsrcnn", "scale": 2, "channel": "y", "degradation": "bicubic",
          "results": [{"dataset": "Set5", "images": 5, "psnr": 36.9412, "ssim": 0.955702,
                       "seconds": 0.21}]}


class Resources(HTMLParser):
    """Every URL-valued attribute of a page (src, href, ...) and every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "srcset", "data", "action",
                                                   "xlink:href", "poster")]


def report(tmp_path, *argv: str) -> str:
    out = tmp_path / "report.html"
    assert main(["report", *argv, "-o", str(out)]) == EXIT_OK
    return out.read_text()


def test_a_report_from_two_results_is_one_file_that_refers_to_nothing_else(tmp_path):
    (tmp_path / "bicubic.json").write_text(json.dumps(BICUBIC))
    (tmp_path / "fsrcnn.json").write_text(json.dumps(FSRCNN))
    page = report(tmp_path, str(tmp_path / "bicubic.json"), str(tmp_path / "fsrcnn.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bicubic.json", "fsrcnn.json",
                                                          "report.html"]
    assert not re.search(r"(?i)\b(https?|file|ftp):", page)
    found = Resources()
    found.feed(page)
    assert all(url.startswith("data:") for url in found.urls)
    assert {"link", "script", "iframe"}.isdisjoint(found.tags) and "svg" in found.tags
    for number in ("33.68", "0.9305", "30.24", "0.8692", "36.94", "0.9557"):
        assert f"<td>{number}</td>" in page  # PSNR and SSIM
    for ms in ("7.4", "3.0", "42", "5.7"):  # ms per image, and fsrcnn's time / bicubic's
        assert f"<td>{ms}</td>" in page
    assert "Set5 x2" in page and "Set14 x2" in page


def test_eval_output_goes_straight_into_a_report(tmp_path, capsys):
    for name in ("a", "b"):
        rng = np.random.default_rng(len(name))
        Image.fromarray(rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png")
    assert main(["eval", "-m", "bicubic", "-s", "2", "-s", "3", "-d", str(tmp_path),
                 "--json", "-q"]) == EXIT_OK
    (tmp_path / "eval.json").write_text(capsys.readouterr().out)  # one object per line
    runs = read_runs([tmp_path / "eval.json"])
    assert [(r.model, r.scale, r.results[0].images) for r in runs] == [("bicubic", 2, 2),
                                                                     ("bicubic", 3, 2)]
    page = report(tmp_path, str(tmp_path / "eval.json"))
    assert f"{runs[1].results[0].psnr:.2f}" in page


def test_crops_are_embedded_and_written_as_a_sheet(tmp_path):
    (tmp_path / "runs.json").write_text(json.dumps([BICUBIC, FSRCNN]))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)).save(
        tmp_path / "hr.png")
    sheet = tmp_path / "crops.png"
    page = report(tmp_path, str(tmp_path / "runs.json"), "--crops", str(tmp_path / "hr.png"),
                  "--crops", f"{tmp_path / 'hr.png'}@10,20", "-m", "bicubic", "-m", "nearest",
                  "--crop-sheet", str(sheet))
    assert page.count("data:image/png;base64,") == 1
    assert Image.open(sheet).size == (3 * 192, 22 + 2 * 192)  # 2 methods and HR, 2 rows


def test_a_file_that_is_not_eval_output_is_named(tmp_path, capsys):
    (tmp_path / "bad.json").write_text(json.dumps({"model": "bicubic", "scale": 2,
                                                   "results": [{"dataset": "Set5"}]}))
    assert main(["report", str(tmp_path / "bad.json"), "-o", str(tmp_path / "r.html")]) \
        == EXIT_FAILED
    assert "bad.json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_plot_is_an_svg_file_of_its_own():
    svg = psnr_time_svg(read_runs_from([BICUBIC, FSRCNN]), standalone=True)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "bicubic" in labels and "fsrcnn" in labels and "Set5 x2 (Y)" in labels


def read_runs_from(objects: list[dict]):
    from superres.report import parse_run

    return [parse_run(o) for o in objects]


def test_the_crop_window_goes_where_the_detail_is():
    image = np.zeros((200, 300), np.uint8)
    image[120:160, 30:70] = np.random.default_rng(0).integers(0, 256, (40, 40))
    top, left = detailed_window(image, 32)
    assert 120 <= top <= 128 and 30 <= left <= 38


@pytest.mark.parametrize(("text", "expected"), [
    ("a/zebra.png@80,260", ("a/zebra.png", (80, 260))),
    ("me@home.png", ("me@home.png", None)),
])
def test_a_crop_names_an_image_and_maybe_its_window(text, expected):
    path, window = parse_crop(text)
    assert (str(path), window) == expected


def test_the_report_opens_in_chromium_without_console_errors_or_requests(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the browser tests need `pip install playwright`")
    from test_serve import chromium  # the serve tests' finder of Debian's Chromium

    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium to drive: `apt-get install chromium` (.ci/run does)")
    (tmp_path / "runs.json").write_text(json.dumps([BICUBIC, FSRCNN]))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
                    ).save(tmp_path / "hr.png")
    report(tmp_path, str(tmp_path / "runs.json"), "--crops", str(tmp_path / "hr.png"))
    url = (tmp_path / "report.html").as_uri()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        page = browser.new_page()
        page.on("console", lambda message: message.type == "error" and errors.append(
            message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.route(lambda url: not url.startswith(("file:", "data:")),  # never the network
                   lambda route: route.abort())
        page.goto(url, wait_until="load")
        shown = page.eval_on_selector("img", "img => img.complete && img.naturalWidth")
        plot = page.locator("svg").first.bounding_box()
        browser.close()
    assert errors == []
    assert all(r == url or r.startswith("data:") for r in requests)
    assert shown == 3 * 192 and plot is not None and plot["width"] > 300
