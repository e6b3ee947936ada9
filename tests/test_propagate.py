"""Propagation (hints.propagate): across texture, not across strokes, never onto the page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

from pix2pix.cli import main
from pix2pix.hints import FILLED, fill_as_trained, fill_regions
from pix2pix.hints.propagate import PAINT, propagate, propagate_hints
from pix2pix.inference import Pix2Pix
from pix2pix.training.loop import train

from .conftest import tiny_config

RED = (0.8, -0.6, -0.6)


def hatched_figure(size: int = 96) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Line art (1, 3, S, S): a figure (a closed outline, 2 px) filled with hatching (dashes 4 px long, 1 px
    thick, gaps of 1-3 px: the open fill's gap closing cuts it into many small regions) and, beside it, a
    closed box. Returns the line art, the figure's paper pixels and the box's inside."""
    rng = np.random.default_rng(0)
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    draw.rectangle([2, 2, 52, size - 3], outline=0, width=2)
    draw.rectangle([58, 20, 88, 76], outline=0, width=2)
    for y in range(8, size - 8, 3):
        for x0 in range(6, 46, 6):
            x = x0 + int(rng.integers(0, 3))
            draw.line([x, y, x + 3, y], fill=0, width=1)
    light = np.asarray(img).astype(np.float32) / 255
    art = torch.from_numpy(light * 2 - 1)[None, None].repeat(1, 3, 1, 1)
    figure = np.zeros_like(light, dtype=bool)
    figure[4 : size - 4, 4:51] = True  # inside the outline (x and y 2-3 and 51-52, 92-93)
    box = np.zeros_like(figure)
    box[23:74, 61:86] = True
    return art, figure & (light > 0.8), box


def one_hint(size: int = 96, y: int = 45, x: int = 20) -> torch.Tensor:
    hints = torch.zeros(1, 4, size, size)
    hints[0, :3, y : y + 3, x : x + 3] = torch.tensor(RED)[:, None, None]
    hints[0, 3, y : y + 3, x : x + 3] = 1
    return hints


def test_propagation_crosses_hatching_and_stops_at_a_solid_stroke() -> None:
    art, figure, box = hatched_figure()
    hints = one_hint()
    out = propagate_hints(hints, art)
    painted = (out[0, 3] > 0).numpy()
    # Every paper pixel of the hatched figure takes the hint's colour, however many dashes lie between.
    assert painted[figure].all()
    colour = out[0, :3].permute(1, 2, 0).numpy()[figure & ~(hints[0, 3] > 0).numpy()]
    np.testing.assert_allclose(colour, np.broadcast_to(RED, colour.shape), atol=1e-5)
    assert set(np.unique(out[0, 3].numpy()[figure])) <= {FILLED, 1.0}
    # Nothing crosses the figure's outline: not the box beside it, not the page around.
    assert not painted[box].any()
    assert np.array_equal(painted, figure | (hints[0, 3] > 0).numpy())  # the hint's own pixels: some on a dash
    # Today's open fill, for comparison, stops at the dashes: the hatching is many regions to it.
    filled = fill_regions(hints, art, blend=True, mode="open")
    assert (filled[0, 3] > 0).numpy()[figure].mean() < 0.1


def test_confidence_falls_behind_a_stroke_and_through_a_gap() -> None:
    size = 64
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    draw.line([32, 0, 32, size], fill=0, width=2)  # a wall from edge to edge
    light = np.asarray(img).astype(np.float64) / 255
    mask = np.zeros((size, size), dtype=bool)
    mask[30:33, 10:13] = True
    colour = np.zeros((size, size, 3))
    colour[mask] = (0.2, 0.4, 0.9)
    field, confidence = propagate(light, mask, colour)
    assert confidence[:, :30].min() > 0.3 and confidence[:, 35:].max() < 1e-4
    reached = field[confidence > 1e-3]
    np.testing.assert_allclose(reached, np.broadcast_to((0.2, 0.4, 0.9), reached.shape))
    # A 4 px door in the wall lets some through: more than the wall, less than on the hint's side.
    light[28:32, 31:34] = 1.0
    _, leaky = propagate(light, mask, colour)
    assert confidence[30, 40] < leaky[30, 40] < leaky[30, 20]


def test_two_hints_meet_in_between_and_propagating_twice_changes_nothing() -> None:
    art, figure, _ = hatched_figure()
    hints = one_hint(y=12, x=20)
    hints[0, :3, 80:83, 20:23] = torch.tensor([-0.6, -0.6, 0.8])[:, None, None]
    hints[0, 3, 80:83, 20:23] = 1
    out = propagate_hints(hints, art)
    top, bottom = out[0, :3, 15, 30], out[0, :3, 78, 30]
    assert top[0] > 0.5 > bottom[0] and bottom[2] > 0.5 > top[2]
    middle = out[0, :3, 47, 20]
    assert -0.5 < middle[0] < 0.5 and -0.5 < middle[2] < 0.5  # a mix of red and blue, not either
    torch.testing.assert_close(propagate_hints(out, art), out)  # FILLED pixels are not hints: no change
    # No hint: nothing painted.
    assert torch.equal(propagate_hints(torch.zeros_like(hints), art), torch.zeros_like(hints))


def test_the_page_is_never_painted_and_a_hint_on_it_stays_a_dot() -> None:
    art, figure, box = hatched_figure()
    hints = one_hint(y=4, x=70)  # above the box, on the page
    out = propagate_hints(hints, art)
    assert torch.equal(out, hints)
    assert PAINT > 0


def test_bad_shapes_are_named() -> None:
    art, _, _ = hatched_figure()
    with pytest.raises(ValueError, match="does not match line art"):
        propagate_hints(torch.zeros(1, 4, 32, 32), art)
    with pytest.raises(ValueError, match="differ in size"):
        propagate(np.ones((8, 8)), np.zeros((8, 9), dtype=bool), np.zeros((8, 8, 3)))


@pytest.fixture(scope="module")
def fill_run(tmp_path_factory: pytest.TempPathFactory, tiny_data) -> Path:
    """A 2-step hints model with the blended open fill, and one with dots only."""
    root = tmp_path_factory.mktemp("spread_runs")
    base = dict(hints=True, max_steps=2, val_every=0, sample_every=0, tensorboard=False, html=False)
    train(
        tiny_config(tiny_data, hint_fill=True, hint_blend=True, hint_regions="open", **base),
        root / "fill",
        progress=False,
    )
    train(tiny_config(tiny_data, **base), root / "dots", progress=False)
    return root


def test_a_pipeline_that_propagates_feeds_the_model_the_propagated_map(fill_run: Path) -> None:
    pipe = Pix2Pix.from_pretrained(fill_run / "fill", device="cpu", spread="propagate")
    assert pipe.spread == "propagate" and pipe.meta["spread"] == "propagate"
    plain = Pix2Pix.from_pretrained(fill_run / "fill", device="cpu")
    art, _, _ = hatched_figure(32 * 3)
    art = torch.nn.functional.interpolate(art, size=(32, 32), mode="area")
    hints = one_hint(32, y=14, x=6)
    with torch.no_grad():
        want = pipe.generator(torch.cat([art, fill_as_trained(propagate_hints(hints, art), art, pipe.config.model)], 1))
        got = pipe.translate_tensor(art, hints=hints)
    torch.testing.assert_close(got, want)
    assert (got - plain.translate_tensor(art, hints=hints)).abs().max() > 1e-4  # the spread changed the input
    torch.testing.assert_close(pipe.translate_tensor(art), plain.translate_tensor(art))  # no hints: the same


def test_evaluate_scores_the_strokes_curve_beside_the_dots(fill_run: Path, tmp_path: Path) -> None:
    """--stroke-curve (issue 40): the curve with strokes as well as with dots, in metrics.json, the printed table
    and the report; the dots curve is the standard protocol's, the strokes curve what --hint-shape strokes gives."""
    run = fill_run / "fill"

    def evaluate(*args: str) -> dict:
        out = tmp_path / "_".join(args).replace("-", "")
        r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(run), "--hints", "5", *args, "--out", str(out)])
        assert r.exit_code == 0, r.output
        return {"json": json.loads((out / "metrics.json").read_text()), "text": r.output, "page": out / "index.html"}

    both, dots, strokes = evaluate("--stroke-curve"), evaluate(), evaluate("--hint-shape", "strokes")
    assert both["json"]["hint_curve"] == dots["json"]["hint_curve"]  # the standard protocol, unchanged
    assert both["json"]["hint_curve_strokes"]["mean"] == strokes["json"]["hint_curve"]["mean"]
    assert both["json"]["hint_curve_strokes"]["mean"]["5"] != both["json"]["hint_curve"]["mean"]["5"]
    assert "hint_curve_strokes" not in dots["json"]
    assert "strokes hints per image" in both["text"] and "strokes hints per image" not in dots["text"]
    page = both["page"].read_text()
    assert 'id="stroke-curve-table"' in page and 'id="stroke-curve-table"' not in dots["page"].read_text()
    r = CliRunner().invoke(main, ["--no-progress", "evaluate", str(run), "--hint-shape", "strokes", "--stroke-curve"])
    assert r.exit_code != 0 and "it needs hint_shape 'dots' and curve" in r.output


def test_spread_is_checked_and_named(fill_run: Path) -> None:
    with pytest.raises(ValueError, match="unknown spread 'flood'; valid: fill, propagate"):
        Pix2Pix.from_pretrained(fill_run / "fill", device="cpu", spread="flood")
    with pytest.raises(ValueError, match="needs a hints model trained with hint_fill"):
        Pix2Pix.from_pretrained(fill_run / "dots", device="cpu", spread="propagate")


def test_translate_and_evaluate_take_spread(fill_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    run = fill_run / "fill"
    r = CliRunner().invoke(
        main,
        ["--no-progress", "evaluate", str(run), "--hints", "5", "--no-curve", "--spread", "propagate"]
        + ["--out", str(tmp_path / "ev")],
    )
    assert r.exit_code == 0, r.output
    assert "hints spread by propagate" in r.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["spread"] == "propagate"
    # Strokes instead of dots: said in the table's header and metrics.json, and scored differently.
    r = CliRunner().invoke(
        main,
        ["--no-progress", "evaluate", str(run), "--hints", "5", "--hint-shape", "strokes"]
        + ["--spread", "propagate"]
        + ["--out", str(tmp_path / "ev_strokes")],
    )
    assert r.exit_code == 0, r.output
    assert "hints as strokes" in r.output
    strokes = json.loads((tmp_path / "ev_strokes" / "metrics.json").read_text())
    dots = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert strokes["hint_shape"] == "strokes" and dots["hint_shape"] == "dots"
    page = (tmp_path / "ev_strokes" / "index.html").read_text()
    assert "a short stroke" in page and "spread by propagate before the model" in page  # the curve's note
    assert "trained model, 5 hints, as strokes, spread by propagate" in page  # the table's row
    assert "a short stroke" not in (tmp_path / "ev" / "index.html").read_text()
    assert strokes["mean"]["model_h5"] != dots["mean"]["model_h5"]
    sketch = next((tmp_path / "ev" / "inputs").glob("*.png"))
    points = tmp_path / "points.json"
    points.write_text(json.dumps([{"x": 10, "y": 10, "color": "#e03030", "size": 3}]))
    outs = {}
    for spread in ("fill", "propagate"):
        r = CliRunner().invoke(
            main,
            ["--no-progress", "translate", str(run), str(sketch), "--hints", str(points), "--spread", spread]
            + ["--out", str(tmp_path / spread)],
        )
        assert r.exit_code == 0, r.output
        outs[spread] = np.asarray(Image.open(tmp_path / spread / sketch.name))
        # The CLI's output is the API's with the same spread.
        api = Pix2Pix.from_pretrained(run, device="cpu", spread=spread)
        with Image.open(sketch) as img:
            want = np.asarray(api(img.convert("RGB"), hints=json.loads(points.read_text())))
        assert np.array_equal(outs[spread], want)


def test_the_server_spreads_as_told(fill_run: Path) -> None:
    pytest.importorskip("fastapi")
    from pix2pix.serve.app import create_app

    app = create_app(fill_run / "fill", device="cpu", spread="propagate")
    assert app.state.translator.pipe.spread == "propagate"
    assert create_app(fill_run / "fill", device="cpu").state.translator.pipe.spread == "fill"


def test_the_api_takes_a_spread_per_request(fill_run: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from pix2pix.serve.app import create_app

    art, _, _ = hatched_figure(32 * 3)
    art = torch.nn.functional.interpolate(art, size=(32, 32), mode="area")
    sketch = Image.fromarray(((art[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
    buf = io.BytesIO()
    sketch.save(buf, format="PNG")
    points = [{"x": 7, "y": 15, "color": "#e03030", "size": 3}]
    with TestClient(create_app(fill_run / "fill", device="cpu"), raise_server_exceptions=False) as client:
        info = client.get("/v1/model").json()
        assert info["spread"] == "fill" and info["spreads"] == ["fill", "propagate"]
        image = {"image": ("s.png", buf.getvalue(), "image/png")}
        for spread in ("fill", "propagate"):
            r = client.post("/v1/translate", data={"hints": json.dumps(points), "spread": spread}, files=image)
            assert r.status_code == 200, r.text
            want = Pix2Pix.from_pretrained(fill_run / "fill", device="cpu", spread=spread)(sketch, hints=points)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), np.asarray(want))
        r = client.post("/v1/translate", data={"hints": json.dumps(points), "spread": "flood"}, files=image)
        assert r.status_code == 400 and "spread 'flood' is not one this model takes (fill, propagate)" in r.text
    with TestClient(create_app(fill_run / "dots", device="cpu"), raise_server_exceptions=False) as client:
        assert client.get("/v1/model").json()["spreads"] == ["fill"]
        r = client.post("/v1/translate", data={"hints": json.dumps(points), "spread": "propagate"}, files=image)
        assert r.status_code == 400 and "(fill)" in r.text


def test_with_spread_shares_the_generator_and_leaves_the_pipeline_alone(fill_run: Path) -> None:
    pipe = Pix2Pix.from_pretrained(fill_run / "fill", device="cpu")
    other = pipe.with_spread("propagate")
    assert other.spread == "propagate" and pipe.spread == "fill" and other.generator is pipe.generator
    assert pipe.meta["spread"] == "fill" and other.meta["spread"] == "propagate"
    assert pipe.with_spread("fill") is pipe
