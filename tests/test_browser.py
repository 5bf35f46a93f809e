"""A real browser opens the attention HTML with the network off.

Needs Debian's `chromium` (.ci/run installs it). Locally the test is skipped
with a reason when Chromium is absent; under CI (CI=true) that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from handbuilt import V, build_model

from interp.data.sequences import repeated_random_tokens
from interp.viz.circuits import write_attention_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INJECTED = "</script><img src=x onerror=\"document.title='pwned'\">"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # network off: every request goes to a closed local port, no DNS
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=5000",
]


def _chromium(tmp_path, *args):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed in CI (.ci/run should install it)")
        pytest.skip("chromium not installed (apt-get install chromium) - browser test skipped")
    profile = tmp_path / "profile"
    out = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out


def test_attention_view_renders_offline_and_escapes_tokens(tmp_path):
    model = build_model()
    tokens = repeated_random_tokens(1, 8, (1, V), seed=0, start_token=0)[0]
    labels = [str(int(t)) for t in tokens]
    labels[3] = INJECTED
    page = write_attention_html(tmp_path / "attn.html", model, tokens, labels, title="probe")
    html = page.read_text()
    assert "unpkg.com" not in html and "<script src" not in html  # nothing to fetch

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    # one AttentionHeads view rendered per layer (the bundle itself holds the text once)
    assert dom.count(">Head Selector (hover to view, click to lock)</h3>") == 2
    assert "<title>probe</title>" in dom  # the injected onerror never ran
    assert "<img" not in dom  # and never became an element
    assert "&lt;/script&gt;&lt;img" in dom  # it is shown as text

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1000,800", f"--screenshot={shot}", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000  # a blank page is a few KB
