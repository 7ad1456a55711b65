"""The HTML report: self-contained, and rendered by headless Chromium without errors, images shown."""

import os
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")

import pytest

from ciss_vae import cli
from ciss_vae.report import render_report, write_report
from conftest import make_table

FAST = ["--epochs", "3", "--epochs-per-loop", "2", "--max-loops", "1", "--hidden-dims", "16,8", "--latent-dim", "3",
        "--batch-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data, _, clusters = make_table(n=120)
    data.insert(0, "grp", clusters)
    data.to_csv(tmp / "in.csv", index=False)
    code = cli.main([str(a) for a in ["impute", tmp / "in.csv", "-o", tmp / "out.parquet", "--cluster-column",
                                      "grp", "--report", tmp / "report.html", *FAST]])
    assert code == 0
    return tmp / "report.html"


def test_report_is_self_contained(report):
    text = report.read_text()
    imgs = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(imgs) == 3  # clusters, history, distributions
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r"(src|href)=['\"](http|//|file:)", text)
    for heading in ("Settings", "Clusters", "Training history", "Observed and imputed distributions",
                    "What was imputed"):
        assert f"<h2>{heading}</h2>" in text
    assert "<td>epochs</td><td>3</td>" in text


def test_report_escapes_and_handles_no_history(tmp_path):
    data, _, clusters = make_table(n=60)
    text = render_report(data, data.fillna(0.0), settings={"<b>": "x&y"}, clusters=clusters, history=None)
    assert "&lt;b&gt;" in text and "x&amp;y" in text
    assert "No training history" in text
    assert write_report(tmp_path / "r.html", data, data.fillna(0.0)) == str(tmp_path / "r.html")


_PROBE = """<script>
window.addEventListener('error', function (e) { document.title = 'JS' + 'ERROR ' + e.message; });
window.addEventListener('load', function () {
  var r = [];
  document.querySelectorAll('img').forEach(function (i) {
    r.push(i.complete && i.naturalWidth > 0 ? 'ok' : 'broken');
  });
  var p = document.createElement('pre'); p.id = 'probe';
  p.textContent = 'IMG' + 'RESULT:' + r.join(',') + ':END';
  document.body.appendChild(p);
});
</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed (CI installs Debian's chromium in .ci/run)")
        pytest.skip("chromium is not installed")
    # A copy of the page with a probe appended: it reports each image's natural width once loaded.
    page = tmp_path / "probed.html"
    page.write_text(report.read_text().replace("</body>", _PROBE + "</body>"))
    res = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r"IMGRESULT:([a-z,]*):END", res.stdout)
    assert found, res.stdout[-2000:]
    assert found.group(1).split(",") == ["ok", "ok", "ok"]
    assert "JSERROR" not in res.stdout
    console_errors = [line for line in res.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console_errors, console_errors
