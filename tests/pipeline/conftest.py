"""Headless-Chromium check of a report page: console errors, failed loads, image sizes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")

# Injected at the start of <head> of a COPY of the page: it records uncaught errors, failed
# loads (capture phase), console.error/warn calls, the natural and laid-out size of every image
# and every network resource the page fetched, then writes them as JSON into the DOM for
# --dump-dom.
_PROBE = """<script>
window.__lrkit = {errors: []};
window.addEventListener('error', function (e) {
  window.__lrkit.errors.push(String(e.message || (e.target && (e.target.src || e.target.href))
    || 'error'));
}, true);
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__lrkit.errors.push(level + ': ' + Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
});
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    var box = img.getBoundingClientRect();
    return {w: img.naturalWidth, h: img.naturalHeight, complete: img.complete, alt: img.alt,
            shown_w: Math.round(box.width), shown_h: Math.round(box.height)};
  });
  var resources = performance.getEntriesByType('resource').map(function (r) { return r.name; });
  var out = document.createElement('pre');
  out.id = 'lrkit-probe';
  out.textContent = JSON.stringify({images: images, errors: window.__lrkit.errors,
                                    resources: resources, title: document.title});
  document.body.appendChild(out);
});
</script>"""


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def probe_page(html_path: Path, chromium: str) -> dict[str, Any]:
    """Load a copy of ``html_path`` (with the probe) in headless Chromium; return the probe."""
    html = html_path.read_text(encoding="utf-8")
    probed = re.sub(r"<head>", "<head>" + _PROBE, html, count=1)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(probed, encoding="utf-8")
        profile = Path(tmp) / "profile"
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a remote fetch would fail
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="lrkit-probe">(.*?)</pre>', proc.stdout, re.S)
    if match is None:
        raise AssertionError(
            f"Chromium returned no probe (rc={proc.returncode}); stderr tail: {proc.stderr[-2000:]}"
        )
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    data: dict[str, Any] = json.loads(text.replace("&amp;", "&"))
    data["console"] = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return data


@pytest.fixture
def chromium_probe() -> Callable[[Path], dict[str, Any]]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "headless Chromium is not installed (looked for /usr/bin/chromium, "
            "chromium, chromium-browser, google-chrome); .ci/run installs it"
        )
    return lambda path: probe_page(path, chromium)
