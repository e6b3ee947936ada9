"""The evaluation report and the live training page, opened in real headless Chromium."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pix2pix.cli import main
from pix2pix.config import apply_overrides
from pix2pix.training.loop import train

from .conftest import tiny_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
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
    rows = page.locator("#metrics tr[data-entry]")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-entry") for i in range(3)] == ["model", "copy_input", "untrained"]
    assert page.locator("#metrics th").all_inner_texts()[1:] == ["L1 ↓", "PSNR (dB) ↑", "SSIM ↑"]
    cells = page.locator("#metrics tr[data-entry='copy_input'] td").all_inner_texts()
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


@pytest.fixture(scope="module")
def server(run_with_report):
    """uvicorn serving the run on a free loopback port, in a thread."""
    from pix2pix.serve.app import create_app, serving_in_background

    run, _ = run_with_report
    with serving_in_background(create_app(run)) as url:
        yield url


def canvas_pixel(page, x: int, y: int, layer: str = "canvas") -> list[int]:
    return page.evaluate(
        f"Array.from(document.getElementById('{layer}').getContext('2d').getImageData({x}, {y}, 1, 1).data)"
    )


def test_page_uploads_and_draws(page, server, tiny_data: Path, tmp_path: Path) -> None:
    """Issue 42, item 6: before the first result the pane says where it will appear (no broken image); an
    upload keeps its own size (700 x 500 here, shown scaled) and the result and its download come back at it;
    a stroke updates the result shortly after it ends, without pressing "Colour it"."""
    page.goto(server + "/")
    result = page.locator("#result")
    assert result.get_attribute("data-count") == "0"
    assert result.is_hidden() and page.locator("#placeholder").is_visible()
    assert page.evaluate("Array.from(document.images).filter(i => !i.hidden && !(i.naturalWidth > 0)).length") == 0
    # Upload real line art, not square: the result comes back at the upload's size.
    sketch = tmp_path / "sketch.png"
    from PIL import Image

    with Image.open(sorted((tiny_data / "test").glob("*.png"))[0]) as pair:
        pair.crop((0, 0, 32, 32)).resize((700, 500)).save(sketch)
    page.set_input_files("#upload", str(sketch))
    page.wait_for_function("document.getElementById('result').dataset.count === '1'", timeout=30_000)
    assert page.evaluate("[canvas.width, canvas.height]") == [700, 500]
    size = "[document.getElementById('result').naturalWidth, document.getElementById('result').naturalHeight]"
    assert page.evaluate(size) == [700, 500]
    assert result.is_visible() and page.locator("#placeholder").is_hidden()
    shown = result.bounding_box()
    assert shown["width"] <= 321 and abs(shown["width"] / shown["height"] - 1.4) < 0.02  # scaled, aspect kept
    assert page.get_attribute("#download", "aria-disabled") == "false"
    downloaded = page.evaluate(
        "fetch(document.getElementById('download').href).then(r => r.blob()).then(createImageBitmap)"
        ".then(b => [b.width, b.height])"
    )
    assert downloaded == [700, 500]
    first = page.evaluate("document.getElementById('result').src")
    # Draw a stroke with the pen: the result updates by itself once the stroke ends.
    box = page.locator("#canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 80, cy - 60)
    page.mouse.down()
    for i in range(1, 9):
        page.mouse.move(cx - 80 + 20 * i, cy - 60 + 15 * i)
    page.mouse.up()
    page.wait_for_function("Number(document.getElementById('result').dataset.count) >= 2", timeout=30_000)
    assert canvas_pixel(page, 350, 250) == [0, 0, 0, 255]  # the stroke went through the drawing's centre
    assert page.evaluate("document.getElementById('result').src") != first
    assert page.evaluate(size) == [700, 500]
    page.click("#eraser")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 5, cy + 5)
    page.mouse.up()
    page.wait_for_function("Number(document.getElementById('result').dataset.count) >= 3", timeout=30_000)
    assert canvas_pixel(page, 350, 250) == [255, 255, 255, 255]
    assert "Error" not in page.locator("#status").inner_text()


def test_strokes_in_a_burst_ask_for_one_result(page, server) -> None:
    """Debounced: three quick strokes, one request, shortly after the last."""
    page.goto(server + "/")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/v1/translate") else None)
    box = page.locator("#canvas").bounding_box()
    for k in range(3):
        page.mouse.move(box["x"] + 40, box["y"] + 40 + 30 * k)
        page.mouse.down()
        page.mouse.move(box["x"] + 200, box["y"] + 40 + 30 * k)
        page.mouse.up()
    page.wait_for_function("document.getElementById('result').dataset.count === '1'", timeout=30_000)
    page.wait_for_timeout(600)
    assert len(requests) == 1


def test_the_api_docs_work_offline(page, server) -> None:
    """/docs is served by the server itself (FastAPI's loads Swagger UI from a CDN): with every request to
    another host blocked it lists the endpoints from openapi.json."""
    from urllib.parse import urlparse

    here = urlparse(server).netloc
    outside: list[str] = []

    def only_here(route) -> None:
        if urlparse(route.request.url).netloc == here:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    try:
        page.goto(server + "/docs")
        page.wait_for_selector(".op[data-path='/v1/translate']", timeout=20_000)
        assert page.locator(".op[data-path='/v1/model']").count() == 1
        assert "multipart" in page.locator(".op[data-path='/v1/translate'] .desc").inner_text()
    finally:
        page.unroute("**/*")
    assert outside == []


@pytest.fixture(scope="module")
def hints_server(hints_run):
    from pix2pix.serve.app import create_app, serving_in_background

    with serving_in_background(create_app(hints_run)) as url:
        yield url


def result_pixels(page) -> list[list[int]]:
    """The result image's pixels (RGB rows), read back through a canvas in the page."""
    return page.evaluate(
        "(() => { const img = document.getElementById('result'); const c = document.createElement('canvas');"
        " c.width = img.naturalWidth; c.height = img.naturalHeight; const x = c.getContext('2d');"
        " x.drawImage(img, 0, 0); const d = x.getImageData(0, 0, c.width, c.height).data; const rows = [];"
        " for (let y = 0; y < c.height; y++) { const row = []; for (let i = 0; i < c.width; i++) {"
        " const k = 4 * (y * c.width + i); row.push([d[k], d[k + 1], d[k + 2]]); } rows.push(row); } return rows; })()"
    )


def redness_at_centre(rows: list) -> float:
    c = len(rows) // 2
    patch = [rows[y][x] for y in range(c - 1, c + 2) for x in range(c - 1, c + 2)]
    r, g, b = (sum(p[i] for p in patch) / len(patch) for i in range(3))
    return r - max(g, b)


def test_a_red_hint_dropped_in_a_drawn_shape_turns_it_red(page, hints_server) -> None:
    page.goto(hints_server + "/")
    page.wait_for_function("!document.getElementById('hint-tools').hidden", timeout=20_000)
    # Draw a closed circle with the pen.
    box = page.locator("#canvas").bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"] * 0.32
    import math

    page.mouse.move(cx + r, cy)
    page.mouse.down()
    for i in range(1, 41):
        page.mouse.move(cx + r * math.cos(2 * math.pi * i / 40), cy + r * math.sin(2 * math.pi * i / 40))
    page.mouse.up()
    page.wait_for_function("Number(document.getElementById('result').dataset.count) >= 1", timeout=20_000)
    page.wait_for_timeout(300)
    count = int(page.get_attribute("#result", "data-count"))
    without = redness_at_centre(result_pixels(page))
    # Pick red and drop a hint in the middle of the shape.
    page.click("#hint")
    page.eval_on_selector("#colour", "el => { el.value = '#e53935'; el.dispatchEvent(new Event('input')); }")
    page.mouse.click(cx, cy)
    page.wait_for_function(
        f"Number(document.getElementById('result').dataset.count) > {count}"
        " && document.getElementById('result').dataset.hints === '1'",
        timeout=20_000,
    )
    with_hint = redness_at_centre(result_pixels(page))
    dot = page.evaluate(
        "Array.from(document.getElementById('hints').getContext('2d').getImageData(128, 128, 1, 1).data)"
    )
    assert dot == [229, 57, 53, 255]  # the dot is on the hint layer, in the picked colour
    # Around the hint the result turned red (R well above G and B); without it, it was not.
    assert without < 20 and with_hint > 40 and with_hint - without > 50, (without, with_hint)
    # Clear hints: the result goes back to the hint-free one.
    page.click("#clear-hints")
    page.wait_for_function("document.getElementById('result').dataset.hints === '0'", timeout=20_000)
    assert redness_at_centre(result_pixels(page)) < 20
    assert "Error" not in page.locator("#status").inner_text()


def test_the_hint_brush_size_sets_the_dots_width(page, hints_server) -> None:
    """The brush is in screen pixels: at 10 a dot on the 256 px canvas shown at 320 px is 8 px wide, at 30 it is 24."""
    page.goto(hints_server + "/")
    page.wait_for_function("!document.getElementById('hint-tools').hidden", timeout=20_000)
    page.click("#hint")
    box = page.locator("#canvas").bounding_box()
    widths = []
    for value, (fx, fy) in (("10", (0.25, 0.25)), ("30", (0.7, 0.7))):
        page.eval_on_selector("#brush", f"el => {{ el.value = '{value}'; el.dispatchEvent(new Event('input')); }}")
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        y = round(256 * fy)
        row = page.evaluate(
            f"Array.from(document.getElementById('hints').getContext('2d').getImageData(0, {y}, 256, 1).data)"
        )
        widths.append(sum(1 for i in range(3, len(row), 4) if row[i] > 0))
    assert widths == [8, 24]  # each row crosses one dot
    page.wait_for_function("document.getElementById('result').dataset.hints === '2'", timeout=30_000)


@pytest.fixture(scope="module")
def fill_server(tmp_path_factory: pytest.TempPathFactory, shapes_data: Path):
    """A (2-step) hints model with the fill, served: the page offers propagation for it."""
    from pix2pix.serve.app import create_app, serving_in_background

    run = tmp_path_factory.mktemp("fill_page") / "run"
    cfg = tiny_config(shapes_data, hints=True, hint_fill=True, max_steps=2, load_size=32)
    train(apply_overrides(cfg, {"val_every": 0, "sample_every": 0, "tensorboard": False, "html": False}), run)
    with serving_in_background(create_app(run)) as url:
        yield url


def test_the_across_texture_box_asks_for_propagation(page, fill_server, hints_server) -> None:
    """The page shows "Across texture" for a model trained with the fill (not for a dots-only one); ticked,
    the hints request carries spread=propagate and the result updates without "Colour it"."""
    page.goto(hints_server + "/")
    page.wait_for_function("!document.getElementById('hint-tools').hidden", timeout=20_000)
    assert page.locator("#spread-tool").is_hidden()
    page.goto(fill_server + "/")
    page.wait_for_function("!document.getElementById('spread-tool').hidden", timeout=20_000)
    # Record each form the page posts (its fields' names, and text values).
    page.evaluate(
        "(() => { const fetch0 = window.fetch; window.sentForms = []; window.fetch = (url, opts) => {"
        " if (opts && opts.body instanceof FormData) window.sentForms.push(Object.fromEntries("
        " Array.from(opts.body.entries(), ([k, v]) => [k, typeof v === 'string' ? v : 'file'])));"
        " return fetch0(url, opts); }; })()"
    )
    box = page.locator("#canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.click("#hint")
    page.mouse.click(cx, cy)
    page.wait_for_function("document.getElementById('result').dataset.hints === '1'", timeout=20_000)
    count = int(page.get_attribute("#result", "data-count"))
    assert page.evaluate("window.sentForms.at(-1)") == {"image": "file", "hints": "file"}
    page.check("#spread")
    page.wait_for_function(f"Number(document.getElementById('result').dataset.count) > {count}", timeout=20_000)
    assert page.evaluate("window.sentForms.at(-1)") == {"image": "file", "hints": "file", "spread": "propagate"}
    assert "Error" not in page.locator("#status").inner_text()


def test_a_small_upload_is_shown_as_large_as_the_drawing(page, server, tmp_path: Path) -> None:
    """A 160 x 100 drawing fills the 320 px box on both sides: the result is scaled up like the canvas."""
    from PIL import Image, ImageDraw

    sketch = tmp_path / "small.png"
    img = Image.new("RGB", (160, 100), "white")
    ImageDraw.Draw(img).ellipse((40, 20, 120, 80), outline="black", width=2)
    img.save(sketch)
    page.goto(server + "/")
    page.set_input_files("#upload", str(sketch))
    page.wait_for_function("Number(document.getElementById('result').dataset.count) >= 1", timeout=30_000)
    drawn, shown = page.locator("#stage").bounding_box(), page.locator("#result").bounding_box()
    assert drawn["width"] > 300 and abs(drawn["width"] / drawn["height"] - 1.6) < 0.02  # scaled up, aspect kept
    # The same on-screen size, less the result box's 1 px border on each side.
    assert abs(shown["width"] - drawn["width"]) <= 2 and abs(shown["height"] - drawn["height"]) <= 2
    assert page.evaluate(
        "[document.getElementById('result').naturalWidth, document.getElementById('result').naturalHeight]"
    ) == [160, 100]
