"""A PNG of the leaderboard page, rendered by headless Chromium (what the README shows).

``python -m benchmark screenshot [--html PAGE] [--out docs/leaderboard.png]`` opens the static
page (``benchmark leaderboard``'s ``index.html``) in Debian's Chromium (``/usr/bin/chromium``,
else ``chromium`` or ``chromium-browser`` on the ``PATH``), headless, with a fresh profile in a
temporary folder, no network services (background networking, component updates, sync and the
first-run page off), no GPU and no sandbox (so it runs as root in containers and CI), and
writes Chromium's ``--screenshot`` of a window ``width`` pixels wide and ``height`` tall; rows at
the bottom that are only background are then cropped. The page is self-contained (plots are
embedded), so nothing is fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


class ScreenshotError(RuntimeError):
    """Chromium is absent or could not render the page; the message says which."""


def find_chromium() -> str | None:
    """Debian's ``/usr/bin/chromium``, else ``chromium`` or ``chromium-browser`` on the PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: str | os.PathLike, out: str | os.PathLike, *, width: int = 1400,
               height: int = 2400, crop: bool = True, timeout: float = 120.0,
               chromium: str | None = None) -> Path:
    """Renders ``page`` (an HTML file) to the PNG ``out``.

    Args:
        page: the HTML file.
        out: the PNG to write (its folder is created).
        width: window width in pixels.
        height: window height in pixels (the part of the page shown).
        crop: cut the background-only rows at the bottom.
        timeout: seconds Chromium may take.
        chromium: the browser executable (default: :func:`find_chromium`).

    Raises:
        ScreenshotError: no Chromium, it failed, or it wrote no image.
    """
    page, out = Path(page).resolve(), Path(out)
    if not page.is_file():
        raise ScreenshotError(f"{page}: no such page; render it with `python -m benchmark "
                              "leaderboard`")
    browser = chromium or find_chromium()
    if browser is None:
        raise ScreenshotError("Chromium not found: install Debian's chromium (apt-get install "
                              "-y --no-install-recommends chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdme-chromium-") as profile:
        shot = Path(profile) / "page.png"
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/profile",
                   f"--window-size={int(width)},{int(height)}", f"--screenshot={shot}",
                   page.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ScreenshotError(f"Chromium took over {timeout:g} s on {page}") from None
        if not shot.is_file() or shot.stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-3:]
            raise ScreenshotError(f"Chromium wrote no screenshot of {page} (exit "
                                  f"{done.returncode}): {' / '.join(tail)}")
        if crop:
            _crop_bottom(shot)
        shutil.copyfile(shot, out)
    return out


def _crop_bottom(path: Path, margin: int = 24) -> None:
    """Cuts the rows at the bottom that are all the bottom-right pixel's colour."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    background = pixels[-1, -1]
    rows = np.flatnonzero((pixels != background).any(axis=(1, 2)))
    if rows.size == 0:
        return
    bottom = min(pixels.shape[0], int(rows[-1]) + 1 + margin)
    Image.fromarray(pixels[:bottom]).save(path, optimize=True)


__all__ = ["CHROMIUM_FLAGS", "ScreenshotError", "find_chromium", "screenshot"]
