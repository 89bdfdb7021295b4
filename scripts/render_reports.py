"""Render chorus's HTML reports to PNG screenshots with headless Chromium (``make screenshots``).

Each report is opened at a fixed width and captured tall enough for the whole page; the
blank margin below the content is cropped. Usage:
``python scripts/render_reports.py --out docs/img NAME=PATH.html [NAME=PATH.html ...]``
writes ``docs/img/report-NAME.png`` for each.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 1280
TALLEST = 40000


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("chromium not found: apt-get install chromium (make screenshots does it)")


def render(browser: str, page: Path, png: Path) -> None:
    """Screenshot ``page`` into ``png``, cropped to its content (plus a small margin)."""
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "page.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={scratch}/profile", f"--window-size={WIDTH},{TALLEST}",
                        f"--screenshot={raw}", page.resolve().as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        image = Image.open(raw).convert("RGB")
        content = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
        bottom = min(image.height, (content[3] if content else image.height) + 24)
        png.parent.mkdir(parents=True, exist_ok=True)
        image.crop((0, 0, WIDTH, bottom)).save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("pages", nargs="+", help="NAME=PATH.html")
    args = parser.parse_args()
    browser = chromium()
    for item in args.pages:
        name, _, path = item.partition("=")
        target = args.out / f"report-{name}.png"
        render(browser, Path(path), target)
        print(f"{path} -> {target}")


if __name__ == "__main__":
    main()
