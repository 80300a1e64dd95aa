"""`superres serve`: the page's API over HTTP (Starlette's TestClient), then the page itself
in headless Chromium against `superres serve` running as users run it."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web page needs `pip install -e '.[serve]'`")
pytest.importorskip("multipart", reason="the web page needs `pip install -e '.[serve]'`")
from starlette.testclient import TestClient

from superres.api import model_row
from superres.cli import main
from superres.image.sample import sample_image
from superres.models import get_model
from superres.serve import app as serve_app
from superres.serve import create_app
from superres.weights import shipped_weights

STATIC = Path(serve_app.__file__).parent / "static"
# Set to a path, the browser test also saves its screenshot there (docs/serve.png is made
# by docs/serve_screenshot.py, with a larger image).
SCREENSHOT_ENV = "SUPERRES_SERVE_SCREENSHOT"


def png_bytes(width: int = 48, height: int = 40) -> bytes:
    """A crop of the built-in test chart, small enough for FSRCNN x2 in milliseconds."""
    buffer = io.BytesIO()
    sample_image().crop((40, 20, 40 + width, 20 + height)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def client_for() -> Iterator[Any]:
    """Start an app with the given limits; its lifespan (temporary folder) runs."""
    clients = []

    def start(**limits: Any) -> TestClient:
        client = TestClient(create_app(**limits), base_url="http://127.0.0.1")
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for) -> TestClient:
    return client_for()


def post(client: TestClient, data: bytes, name: str = "chart.png", **fields: str) -> Any:
    fields = {"model": "fsrcnn", "scale": "2", **fields}
    return client.post("/api/jobs", files={"file": (name, data, "image/png")}, data=fields)


def finished(client: TestClient, job: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s"
        time.sleep(0.02)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


# ----------------------------------------------------------------------------- HTTP


def test_the_page_ships_in_the_package_and_loads_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css", "icon.svg"):
        assert client.get(f"/static/{asset}").status_code == 200
    for file in STATIC.iterdir():
        text = file.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(\s*["']?(https?:)?//""", text)
        assert "fetch(\"http" not in text and "@import" not in text


def test_the_models_carry_the_zoo_scores_and_the_parameter_counts(client):
    listed = {row["name"]: row for row in client.get("/api/models").json()["models"]}
    table = {name: model_row(get_model(name)) for name in ("fsrcnn", "bicubic")}
    fsrcnn_x2 = next(w for w in shipped_weights() if (w.model, w.scale) == ("fsrcnn", 2))
    quality = listed["fsrcnn"]["quality"]["2"]
    assert quality["source"] == "measured"
    assert quality["Set5"] == fsrcnn_x2.scores["Set5"]
    assert quality["Set14"] == fsrcnn_x2.scores["Set14"]
    assert listed["fsrcnn"]["params"]["2"] == table["fsrcnn"]["params"]["2"]
    # bicubic has no weights: the paper's (the protocol's) figure, Set5 x2 33.66 dB
    assert listed["bicubic"]["quality"]["2"] == {"source": "paper", **{
        name: table["bicubic"]["reference"][name]["2"] for name in ("Set5", "Set14")}}
    # offered: what upscales in seconds without training; not untrained networks, nor
    # models that train on each image, nor minutes-per-image sparse coding, nor video models
    # (shipped, but on a still only their single-frame part works)
    assert {"bicubic", "fsrcnn", "espcn", "srcnn"} <= set(listed)
    assert not {"edsr", "zssr", "dip", "sparse-coding", "vespcn-deep"} & set(listed)
    assert any(w.model == "vespcn-deep" for w in shipped_weights())


def test_a_models_speed_is_measured_here_and_then_listed(client):
    measured = client.get("/api/speed", params={"model": "bicubic", "scale": "2"}).json()
    assert measured["seconds_per_megapixel"] > 0
    bicubic = next(r for r in client.get("/api/models").json()["models"] if r["name"] == "bicubic")
    assert bicubic["speed"]["2"] == measured["seconds_per_megapixel"]
    assert client.get("/api/speed", params={"model": "nope", "scale": "2"}).status_code == 400


def test_fsrcnn_x2_doubles_a_small_image_and_offers_it_under_the_uploads_name(client):
    job = post(client, png_bytes())
    assert job.status_code == 202
    job = finished(client, job.json())
    assert job["state"] == "done", job["error"]
    assert (job["out_width"], job["out_height"]) == (96, 80)
    before = client.get(f"/api/jobs/{job['id']}/before.png")
    assert Image.open(io.BytesIO(before.content)).size == (48, 40)
    result = client.get(f"/api/jobs/{job['id']}/result.png", params={"download": "1"})
    assert result.headers["content-disposition"] == 'attachment; filename="chart_x2.png"'
    assert Image.open(io.BytesIO(result.content)).size == (96, 80)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("notes.png", b"this is not an image", "not an image Pillow can read"),
    ("empty.png", b"", "empty file (0 bytes)"),
    ("cut.png", png_bytes()[:80], "cannot read image"),
])
def test_a_bad_file_gets_one_line_naming_it_and_no_path_of_the_server(client, name, data,
                                                                        reason):
    answer = post(client, data, name)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith(f"{name}: {reason}") and "\n" not in error
    assert str(client.app.state.studio.workdir) not in error


def test_an_upload_over_the_size_limit_is_refused_and_the_server_goes_on(client_for):
    client = client_for(max_upload_bytes=1000)
    answer = post(client, png_bytes() + b"\0" * 2000)
    assert answer.status_code == 413
    assert "over the limit of" in answer.json()["error"]
    # without Content-Length (chunked), the body is cut off as it streams
    boundary = "superres-test"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"'
            f"\r\nContent-Type: image/png\r\n\r\n").encode() + b"\0" * 200_000
    body += f"\r\n--{boundary}--\r\n".encode()
    chunked = client.post("/api/jobs", content=iter([body[i:i + 8192]
                                                     for i in range(0, len(body), 8192)]),
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert chunked.status_code == 413
    assert client.get("/api/models").status_code == 200


def test_the_decompression_bomb_guard_of_the_cli_applies(client_for):
    client = client_for(max_pixels=1000)
    answer = post(client, png_bytes(48, 40))
    assert answer.status_code == 400
    assert "over the limit of 1000 (decompression-bomb guard)" in answer.json()["error"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": "nope"}, "unknown model 'nope'"),
    ({"scale": "8"}, "fsrcnn upscales x2, x3, x4 here, not x8"),
    ({"scale": "two"}, "scale must be a whole number, not 'two'"),
    ({"tile": "-1"}, "tile must be 0 (whole image) or more, not -1"),
])
def test_unknown_models_and_bad_options_are_refused(client, fields, message):
    answer = post(client, png_bytes(), **fields)
    assert (answer.status_code, answer.json()) == (400, {"error": message})


def test_only_the_loopback_names_are_answered(client):
    # a page elsewhere cannot reach the server by rebinding its own name to 127.0.0.1
    assert client.get("/", headers={"host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200


def test_files_stay_in_the_temporary_folder_which_goes_at_shutdown(client_for):
    client = client_for(max_jobs=1)
    workdir = client.app.state.studio.workdir
    first = finished(client, post(client, png_bytes(), "../../outside.png").json())
    assert first["download"] == "outside_x2.png"
    second = finished(client, post(client, png_bytes(), "C:\\Users\\me\\b.png").json())
    assert second["download"] == "b_x2.png"
    # the oldest finished job past max_jobs is forgotten, with its files
    assert client.get(f"/api/jobs/{first['id']}").status_code == 404
    assert client.get(f"/api/jobs/{second['id']}/../{first['id']}").status_code == 404
    assert client.get(f"/api/jobs/{second['id']}/upload").status_code == 404
    assert sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*")) == [
        second["id"], f"{second['id']}/before.png", f"{second['id']}/result.png"]
    client.__exit__(None, None, None)
    assert not workdir.exists()


def test_one_job_at_a_time_per_model_while_the_server_keeps_answering(client_for, monkeypatch):
    release = threading.Event()
    running: list[str] = []

    def held(job: Any) -> float:  # stands for a long upscaling, until released
        running.append(job.model)
        release.wait(20)
        return 0.1

    monkeypatch.setattr(serve_app, "_upscale", held)
    client = client_for(max_jobs=3)
    try:
        first, second = (post(client, png_bytes()).json() for _ in range(2))
        other = post(client, png_bytes(), model="bicubic").json()
        deadline = time.monotonic() + 10
        while len(running) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(running) == ["bicubic", "fsrcnn"]
        state = client.get(f"/api/jobs/{second['id']}").json()
        assert (state["state"], state["ahead"]) == ("queued", 1)
        assert client.get(f"/api/jobs/{first['id']}").json()["state"] == "running"
        assert client.get("/api/models").status_code == 200
        assert post(client, png_bytes()).status_code == 503  # max_jobs waiting or running
    finally:
        release.set()
    assert all(finished(client, job)["state"] == "done" for job in (first, second, other))


def test_the_serve_command_says_when_it_cannot_have_its_port(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the browser


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """`superres serve` in its own process on a free port of 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "superres", "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "api/models", timeout=30) as answer:
                assert answer.status == 200
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"superres serve did not start: {process.stderr.read().decode()}")
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the browser tests need `pip install playwright`")
    executable = chromium()
    if executable is None:
        pytest.skip("no Chromium to drive: `apt-get install chromium` (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True,
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(server)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()


def test_in_chromium_upload_upscale_compare_and_download(page, tmp_path):
    from playwright.sync_api import expect

    chart = tmp_path / "chart.png"
    chart.write_bytes(png_bytes())
    page.set_input_files("#file", str(chart))
    page.check("input[name=scale][value='2']")
    page.check("#model-fsrcnn")
    page.click("#run")
    expect(page.locator("#download")).to_be_visible()

    # the slider shows both images: the upload and the result, at the result's size
    sizes = page.evaluate("""() => ['before', 'after'].map((id) => {
        const img = document.getElementById(id);
        return [img.complete, img.naturalWidth, img.naturalHeight, img.style.width];
    })""")
    assert sizes == [[True, 48, 40, "96px"], [True, 96, 80, "96px"]]
    expect(page.locator("#after-layer")).to_be_visible()
    expect(page.locator("#result-info")).to_contain_text("48×40 → 96×80 with fsrcnn ×2")
    page.locator("#split").fill("35")
    clip = page.locator("#after-layer").evaluate("layer => layer.style.clipPath")
    assert clip == "inset(0px 0px 0px 35%)"  # the result shows right of the divider
    zoom = page.locator("#zoom-level").inner_text()
    page.click("#zoom-in")
    assert page.locator("#zoom-level").inner_text() != zoom
    page.click("#zoom-fit")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(tmp_path / "serve.png"))
    if os.environ.get(SCREENSHOT_ENV):
        page.screenshot(path=os.environ[SCREENSHOT_ENV])

    with page.expect_download() as started:
        page.click("#download")
    download = started.value
    assert download.suggested_filename == "chart_x2.png"
    download.save_as(tmp_path / "downloaded.png")
    with Image.open(tmp_path / "downloaded.png") as result:
        result.verify()
    with Image.open(tmp_path / "downloaded.png") as result:
        assert (result.format, result.size) == ("PNG", (96, 80))


def test_in_chromium_a_dropped_bad_file_shows_its_error_and_the_server_answers_on(page, server):
    from playwright.sync_api import expect

    page.evaluate("""(bytes) => {
        const files = new DataTransfer();
        files.items.add(new File([new Uint8Array(bytes)], 'notes.png', {type: 'image/png'}));
        document.getElementById('drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
    }""", list(b"this is not an image"))
    expect(page.locator("#file-name")).to_contain_text("notes.png")
    page.click("#run")
    expect(page.locator("#error")).to_have_text("notes.png: not an image Pillow can read")
    expect(page.locator("#run")).to_be_enabled()
    assert page.request.get(server + "api/models").ok
