"""`superres serve`: a local web page to upscale an image, compare it and download the result.

The page and its script ship in `static/` (no CDN: it works offline); `app.py` holds the
Starlette application, which checks uploads as the command line checks its inputs and runs
the work through `superres.api` off the event loop. Needs `pip install "superres[serve]"`.
"""

from __future__ import annotations

from superres.serve.app import create_app, serve

__all__ = ["create_app", "serve"]
