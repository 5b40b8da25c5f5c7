"""Screenshots of the built site in headless Chromium, for docs/screenshots/.

    apt-get install -y chromium     # Debian's package; once
    make docs && python tools/docs_screenshots.py

Three pages a reader meets first: the home page, the visualization guide
and the `hires_cam` entry of the API reference. Headless Chromium draws a
page from its top, so an entry further down is found by a script in a copy
of its page, drawn in a window tall enough to hold it, and cropped.
"""

import pathlib
import re
import subprocess
import sys

from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
SITE = REPO / "site"
OUT = REPO / "docs" / "screenshots"
WIDTH = 1280
CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def shoot(page, out, height):
    subprocess.run(
        [
            *CHROMIUM,
            f"--window-size={WIDTH},{height}",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
    )


def top_of(page, anchor):
    """The y of `anchor` on `page`, in pixels, as Chromium lays it out."""
    probe = page.with_name("_probe.html")
    script = (
        "<script>addEventListener('load', () => document.body.setAttribute("
        f"'data-y', Math.round(document.getElementById('{anchor}')"
        ".getBoundingClientRect().top + scrollY)));</script></body>"
    )
    probe.write_text(page.read_text().replace("</body>", script))
    try:
        dom = subprocess.run(
            [*CHROMIUM, f"--window-size={WIDTH},1600", "--dump-dom", probe.as_uri()],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        probe.unlink()
    return int(re.search(r'data-y="(\d+)"', dom).group(1))


def main():
    if not (SITE / "index.html").exists():
        sys.exit("Build the site first: make docs")
    OUT.mkdir(exist_ok=True)
    shoot(SITE / "index.html", OUT / "home.png", 1600)
    shoot(SITE / "visualization.html", OUT / "visualization.png", 2000)
    api = SITE / "api" / "viz.html"
    y = top_of(api, "keras_aprelu.viz.hires_cam")
    tall = OUT / "_tall.png"
    shoot(api, tall, y + 1600)
    with Image.open(tall) as image:
        image.crop((0, max(0, y - 80), WIDTH, y + 1500)).save(OUT / "api_hires_cam.png")
    tall.unlink()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
