"""The evaluation report and the live training page, opened in real headless Chromium."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pix2pix.cli import main
from pix2pix.training.loop import train

from .conftest import tiny_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]  # fmt: skip
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/setup-test-deps.sh installs it)"
)


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1200, "height": 900})
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def run_with_report(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("browser")
    run = root / "run"
    train(tiny_config(tiny_data, max_steps=4, val_every=2, sample_every=2, n_samples=3), run, progress=False)
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(run), "--out", str(root / "report")])
    assert r.exit_code == 0, r.output
    return run, root / "report"


def all_images_loaded(pg) -> bool:
    return pg.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")


def test_report_shows_its_table_and_images(page, run_with_report, tmp_path: Path) -> None:
    _, report = run_with_report
    page.goto(report.joinpath("index.html").as_uri())
    rows = page.locator("#metrics tr[data-method]")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-method") for i in range(3)] == ["model", "copy_input", "untrained"]
    assert page.locator("#metrics th").all_inner_texts()[1:] == ["L1 ↓", "PSNR (dB) ↑", "SSIM ↑"]
    cells = page.locator("#metrics tr[data-method='copy_input'] td").all_inner_texts()
    assert cells[0] == "copy input (baseline)" and all(float(c) > 0 for c in cells[1:])
    n = len(list((report / "inputs").glob("*.png")))
    assert page.locator("#samples .sample").count() == n
    assert page.locator("#samples img").count() == 3 * n
    assert all_images_loaded(page)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000


def test_live_page_shows_samples_and_curves(page, run_with_report) -> None:
    run, _ = run_with_report
    page.goto((run / "live" / "index.html").as_uri())
    assert page.locator("#step").inner_text() == "4"
    assert page.locator("#samples").get_attribute("src") == "samples.png"
    assert page.locator("#curves").count() == 1
    assert all_images_loaded(page)
    headers = page.locator("#latest th").all_inner_texts()
    assert "G_L1" in headers and "val_ssim" in headers
