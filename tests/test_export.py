"""Export: ONNX and TorchScript with parity on real OpenMoji images, and a sidecar that suffices."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pix2pix.cli import main
from pix2pix.config import apply_overrides
from pix2pix.inference import Pix2Pix
from pix2pix.training.loop import train

from .conftest import tiny_config

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    run = tmp_path_factory.mktemp("export") / "run"
    train(
        tiny_config(
            tiny_data, max_steps=4, lr=1e-3, ema_decay=0.9, val_every=0, sample_every=0, tensorboard=False, html=False
        ),
        run,
        progress=False,
    )
    return run


def test_onnx_export_checks_parity_and_writes_a_sidecar(run_dir: Path, tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "model.onnx"
    # In its own process, as a user runs it: one line of result on stdout and stderr together (the graph
    # optimizer's INFO lines, "Removed 151 unused nodes" and the like, stay hidden).
    cmd = [
        sys.executable,
        "-m",
        "pix2pix",
        "--no-progress",
        "export",
        str(run_dir),
        "--format",
        "onnx",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    said = (r.stdout + r.stderr).strip()
    assert "parity vs PyTorch on 3 real images" in said or "parity vs PyTorch on 4 real images" in said
    assert len(said.splitlines()) == 1, said
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 3 and isinstance(dims[2], str) and isinstance(dims[3], str)
    side = json.loads(out.with_suffix(".onnx.json").read_text())
    assert side["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4 and side["size_multiple"] == 32
    assert side["input"]["channels"] == 3 and side["weights"] == "ema" and side["direction"] == "AtoB"


def test_a_20_line_script_translates_with_only_the_onnx_file_and_sidecar(
    run_dir: Path, tmp_path: Path, tiny_data: Path
) -> None:
    out = tmp_path / "m.onnx"
    assert CliRunner().invoke(main, ["export", str(run_dir), "--out", str(out)]).exit_code == 0
    test_png = sorted((tiny_data / "test").glob("*.png"))[0]
    with Image.open(test_png) as pair:
        pair.crop((0, 0, 32, 32)).resize((45, 45)).save(tmp_path / "sketch.png")  # an odd size: padding needed
    script = tmp_path / "run_onnx.py"
    script.write_text(
        textwrap.dedent("""\
        import json, sys
        import numpy as np, onnxruntime as ort
        from PIL import Image
        model, image, out = sys.argv[1:4]
        side = json.load(open(model + ".json"))
        img = Image.open(image).convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("RGB")
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1
        h, w = x.shape[2:]
        m = side["size_multiple"]
        x = np.pad(x, ((0, 0), (0, 0), (0, -h % m), (0, -w % m)), mode="edge")
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        y = sess.run([side["output"]["name"]], {side["input"]["name"]: x})[0][0, :, :h, :w]
        y = np.clip(np.round((y + 1) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        Image.fromarray(y).save(out)
        """)
    )
    assert len(script.read_text().splitlines()) <= 20
    subprocess.run(
        [sys.executable, str(script), str(out), str(tmp_path / "sketch.png"), str(tmp_path / "o.png")],
        check=True,
        timeout=120,
    )
    with Image.open(tmp_path / "sketch.png") as sketch:
        want = np.asarray(Pix2Pix.from_pretrained(run_dir)(sketch, scale="native"), dtype=int)  # the network alone
    got = np.asarray(Image.open(tmp_path / "o.png"), dtype=int)
    assert got.shape == (45, 45, 3) and np.abs(got - want).max() <= 1


def test_onnx_runtime_following_the_sidecar_full_size_recipe_matches_the_library(run_dir: Path, tmp_path: Path) -> None:
    """The library's default for a drawing of another size, done from the ONNX file and its sidecar's
    `full_size` steps: the network at the working size, then the composition at the input's size."""
    import onnxruntime as ort
    import torch

    from pix2pix.fullsize import compose, to_size, working_size

    out = tmp_path / "m.onnx"
    assert CliRunner().invoke(main, ["export", str(run_dir), "--out", str(out)]).exit_code == 0
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    steps = side["full_size"]
    assert steps["reference"] == "pix2pix.fullsize.compose" and len(steps["compose_line_art"]) == 4
    assert f"longer side is {side['train_size']} px" in steps["working_size"]
    sketch = Image.new("RGB", (120, 80), "white")
    from PIL import ImageDraw

    ImageDraw.Draw(sketch).ellipse((20, 10, 100, 70), outline="black", width=3)
    x = torch.from_numpy(np.array(sketch)).permute(2, 0, 1).float()[None] / 127.5 - 1
    small = to_size(x, working_size(80, 120, side["train_size"]))  # (1, 3, 21, 32)
    m, (h, w) = side["size_multiple"], small.shape[-2:]
    padded = np.pad(small.numpy(), ((0, 0), (0, 0), (0, -h % m), (0, -w % m)), mode="edge")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run([side["output"]["name"]], {side["input"]["name"]: padded})[0][:, :, :h, :w]
    got = compose(x, torch.from_numpy(y))
    got = ((got[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).numpy().astype(int)
    want = np.asarray(Pix2Pix.from_pretrained(run_dir)(sketch), dtype=int)
    assert got.shape == want.shape == (80, 120, 3) and np.abs(got - want).max() <= 2


@pytest.mark.parametrize("blend", [True, False], ids=["blend", "nearest"])
def test_a_script_written_from_the_sidecar_alone_matches_the_library_with_hints(
    tmp_path: Path, shapes_data: Path, blend: bool
) -> None:
    """Issue 42, item 7: tests/sidecar_only.py follows the sidecar's text (the working size, the area pooling,
    the hints' resize and fill, padding, the composition at the input's size and the carried hints) with
    onnxruntime, NumPy, SciPy and Pillow only, in its own process, on a 300 x 200 drawing whose hints fall on
    a closed shape, the sky and the ground (the page: carried) and a thin trunk (carried); the library's own
    output (`Pix2Pix(...)(drawing, hints=...)`) agrees within 2 levels on 99.9% of pixels."""
    from PIL import ImageDraw

    run = tmp_path / "run"
    cfg = tiny_config(shapes_data, hints=True, hint_fill=True, hint_blend=blend, max_steps=4, val_every=0)
    train(apply_overrides(cfg, {"sample_every": 0, "tensorboard": False, "html": False}), run, progress=False)
    r = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    drawing = Image.new("RGB", (300, 200), "white")
    d = ImageDraw.Draw(drawing)
    d.line([(0, 150), (300, 150)], fill="black", width=3)
    d.rectangle([60, 70, 160, 150], outline="black", width=3)
    d.rectangle([210, 100, 221, 150], outline="black", width=3)  # a trunk 6 px inside
    d.ellipse([230, 15, 280, 60], outline="black", width=3)
    drawing.save(tmp_path / "drawing.png")
    points = [
        {"x": 110, "y": 110, "color": "#f0d040", "size": 5},
        {"x": 40, "y": 40, "color": "#60a0f0", "size": 4},
        {"x": 40, "y": 180, "color": "#40a040", "size": 3},
        {"x": 215, "y": 125, "color": "#804020", "size": 9},
        {"x": 255, "y": 37, "color": "#ffd000"},
    ]
    (tmp_path / "points.json").write_text(json.dumps(points))
    script = Path(__file__).with_name("sidecar_only.py")
    files = [tmp_path / n for n in ("m.onnx", "drawing.png", "points.json", "script.png")]
    subprocess.run([sys.executable, str(script), *map(str, files)], check=True, timeout=300, cwd=tmp_path)
    got = np.asarray(Image.open(tmp_path / "script.png"), dtype=int)
    want = np.asarray(Pix2Pix.from_pretrained(run)(drawing, hints=points), dtype=int)
    assert got.shape == want.shape == (200, 300, 3)
    close = (np.abs(got - want) <= 2).all(2)
    assert close.mean() >= 0.999, f"{(~close).sum()} pixels differ by more than 2 levels"
    assert np.abs(want[40, 20] - [96, 160, 240]).max() <= 1  # the carried sky is the hint's colour


def test_torchscript_export(run_dir: Path) -> None:
    import torch

    r = CliRunner().invoke(main, ["export", str(run_dir), "--format", "torchscript"])
    assert r.exit_code == 0, r.output
    assert "deprecates TorchScript" in r.output
    path = run_dir / "export" / "generator.pt"
    with pytest.warns(DeprecationWarning, match="torch.jit.load"):
        loaded = torch.jit.load(str(path))
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    pipe = Pix2Pix.from_pretrained(run_dir)
    torch.testing.assert_close(loaded(x), pipe.translate_tensor(x), atol=1e-4, rtol=0)
    assert json.loads(path.with_suffix(".pt.json").read_text())["format"] == "torchscript"


def test_export_without_the_dataset_checks_parity_on_drawings_or_given_images(tmp_path: Path, run_dir: Path) -> None:
    import shutil

    moved = tmp_path / "run"
    shutil.copytree(run_dir, moved)
    cfg = json.loads((moved / "checkpoints" / "last" / "config.json").read_text())
    cfg["data"]["root"] = str(tmp_path / "gone")
    (moved / "checkpoints" / "last" / "config.json").write_text(json.dumps(cfg))
    meta = json.loads((moved / "checkpoints" / "last" / "meta.json").read_text())
    meta.pop("data_root")  # no record of where the data was
    (moved / "checkpoints" / "last" / "meta.json").write_text(json.dumps(meta))
    r = CliRunner().invoke(main, ["export", str(moved)])
    assert r.exit_code == 0, r.output
    assert "parity vs PyTorch on 8 drawings made here (the run's dataset is not here)" in r.output
    assert (
        json.loads((moved / "export" / "generator.onnx.json").read_text())["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4
    )
    (tmp_path / "mine").mkdir()
    Image.new("RGB", (50, 40), (255, 255, 255)).save(tmp_path / "mine" / "a.png")
    r = CliRunner().invoke(
        main, ["export", str(moved), "--images", str(tmp_path / "mine"), "--out", str(tmp_path / "m.onnx")]
    )
    assert r.exit_code == 0 and f"on 1 images from {tmp_path / 'mine'}" in r.output, r.output
    r = CliRunner().invoke(main, ["export", str(moved), "--images", str(tmp_path / "empty")])
    assert r.exit_code != 0 and "no images for the parity check" in r.output


def test_tflite_export_with_parity(run_dir: Path, tmp_path: Path) -> None:
    # In subprocesses: litert-torch loads JAX, which must not live in the test process (JAX warns
    # that any later fork, such as a DataLoader worker's, may deadlock).
    import importlib.util

    if importlib.util.find_spec("litert_torch") is None:
        pytest.skip("the tflite extra is not installed")
    proc = subprocess.run(
        [sys.executable, "-m", "pix2pix", "export", str(run_dir), "--format", "tflite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max |diff|" in proc.stdout
    path = run_dir / "export" / "generator.tflite"
    side = json.loads(path.with_suffix(".tflite.json").read_text())
    assert side["static_input_shape"] == [1, 3, 32, 32]
    assert side["parity"]["max_abs_diff_vs_pytorch"] <= 1e-4
    # The file alone, in the LiteRT interpreter, against this process's PyTorch output.
    x = np.asarray(Image.new("RGB", (32, 32), (200, 30, 30)), dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()\n"
        "it.set_tensor(it.get_input_details()[0]['index'], np.load(sys.argv[2]))\n"
        "it.invoke(); np.save(sys.argv[3], it.get_tensor(it.get_output_details()[0]['index']))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import torch

    want = Pix2Pix.from_pretrained(run_dir).translate_tensor(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() <= 1e-4
