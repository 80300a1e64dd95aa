"""Draw docs/serve.png: the `superres serve` page in headless Chromium, comparing an image
before and after upscaling, through the same clicks as a person (and tests/test_serve.py).

    pip install -e ".[serve,test]" && apt-get install chromium
    python docs/serve_screenshot.py [--image FILE] [-m fsrcnn] [-s 3] [-o docs/serve.png]

Without --image, the input is Set14's comic downscaled by the scale with MATLAB bicubic (the
standard LR image), from $SUPERRES_DATA, or the built-in test chart where that is missing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import uvicorn
from PIL import Image
from playwright.sync_api import sync_playwright

from superres.image.degrade import bicubic_lr
from superres.image.io import read_image, write_image
from superres.image.sample import sample_image
from superres.serve import create_app

ROOT = Path(__file__).resolve().parent.parent


def default_input(scale: int, folder: Path) -> Path:
    """Set14's comic at LR (what SR is measured on), else the built-in chart."""
    comic = Path(os.environ.get("SUPERRES_DATA", "")) / "Set14" / "comic.png"
    if comic.is_file():
        lr, name = Image.fromarray(bicubic_lr(read_image(comic).pixels, scale)), "comic_lr.png"
    else:
        lr, name = sample_image(), "chart.png"
    return write_image(folder / name, lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, help="image to upload (default: Set14 comic, LR)")
    parser.add_argument("-m", "--model", default="fsrcnn")
    parser.add_argument("-s", "--scale", type=int, default=3)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "serve.png")
    args = parser.parse_args()
    browser_path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser_path is None:
        parser.error("no Chromium found: apt-get install chromium")

    with tempfile.TemporaryDirectory() as folder, socket.socket() as listener:
        image = args.image or default_input(args.scale, Path(folder))
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
        thread.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=browser_path)
                page = browser.new_page(viewport={"width": 1360, "height": 860})
                page.set_default_timeout(120_000)
                page.goto(url)
                page.wait_for_selector("body[data-ready=true]")
                page.check(f"input[name=scale][value='{args.scale}']")
                page.wait_for_function(  # every model's speed measured
                    "() => !document.getElementById('models').textContent.includes('speed…')")
                page.set_input_files("#file", str(image))
                page.check(f"#model-{args.model}")
                page.click("#run")
                page.wait_for_selector("#download:not([hidden])")
                page.click("#zoom-fit")
                for _ in range(3):  # close enough that the difference shows
                    page.click("#zoom-in")
                page.evaluate("window.scrollTo(0, 0); document.activeElement.blur()")
                page.screenshot(path=str(args.output))
                browser.close()
        finally:
            server.should_exit = True
            thread.join()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
