"""The web service: translation, model info, and every bad input answered with a 4xx JSON error."""

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from pix2pix.run_folder import save_checkpoint  # noqa: E402
from pix2pix.serve.app import BadInput, ServeSettings, Translator, create_app  # noqa: E402

from .conftest import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    from pix2pix.networks import make_generator

    cfg = tiny_config(tiny_data)
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("serve") / "run"
    save_checkpoint(
        run / "checkpoints" / "last", config=cfg, networks={"generator": make_generator(cfg.model)}, meta={"step": 6}
    )
    return run


@pytest.fixture(scope="module")
def client(run_dir: Path):
    app = create_app(run_dir, settings=ServeSettings(max_bytes=200_000, max_pixels=512 * 512))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def png_bytes(size=(40, 30), color=(255, 255, 255), fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt, **save)
    return buf.getvalue()


def assert_error(r, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and words in body["error"]


@pytest.mark.parametrize("fmt,ctype", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_translate_raw_body(client, fmt: str, ctype: str) -> None:
    r = client.post("/v1/translate", content=png_bytes(fmt=fmt), headers={"content-type": ctype})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.format == "PNG" and img.size == (40, 30)  # the upload's own size, as the library and the CLI give


def test_translate_multipart(client) -> None:
    r = client.post("/v1/translate", files={"image": ("sketch.png", png_bytes(), "image/png")})
    assert r.status_code == 200
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (40, 30)


def test_same_input_same_output_as_the_library(client, run_dir: Path) -> None:
    from pix2pix.inference import Pix2Pix

    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    r = client.post("/v1/translate", content=buf.getvalue(), headers={"content-type": "image/png"})
    served = np.asarray(Image.open(io.BytesIO(r.content)))
    direct = np.asarray(Pix2Pix.from_pretrained(run_dir)(Image.fromarray(rgb)))
    assert np.array_equal(served, direct)


def test_health_model_docs_and_page(client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["generator"] == "unet_32" and info["train_size"] == 32 and info["size_multiple"] == 32
    assert info["step"] == 6 and info["backend"] == "torch" and info["config"]["model"]["ngf"] == 8
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/translate" in spec["paths"] and "/healthz" in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="canvas"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN: everything is served here


def test_non_image_body(client) -> None:
    assert_error(
        client.post("/v1/translate", content=b"hello", headers={"content-type": "image/png"}),
        415,
        "the upload is not a PNG, JPEG or WebP image (its first bytes: b'hello')",
    )


def test_wrong_content_type(client) -> None:
    assert_error(
        client.post("/v1/translate", content=png_bytes(), headers={"content-type": "text/plain"}),
        415,
        "unsupported content type text/plain",
    )
    assert_error(client.post("/v1/translate", content=png_bytes()), 415, "unsupported content type")


def test_unsupported_image_format(client) -> None:
    assert_error(
        client.post("/v1/translate", content=png_bytes(fmt="BMP"), headers={"content-type": "image/png"}),
        415,
        "unsupported image format BMP",
    )


def test_empty_body(client) -> None:
    assert_error(client.post("/v1/translate", content=b"", headers={"content-type": "image/png"}), 400, "empty body")


def test_multipart_without_a_file(client) -> None:
    assert_error(
        client.post("/v1/translate", data={"image": "text"}, files={"other": ("a", b"x")}),
        400,
        "without an 'image' file field",
    )


def test_truncated_image(client) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    data = buf.getvalue()[: len(buf.getvalue()) // 2]
    assert_error(
        client.post("/v1/translate", content=data, headers={"content-type": "image/png"}), 400, "corrupt or truncated"
    )


def test_over_the_byte_limit(client) -> None:
    big = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)  # ~270 kB as PNG
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 200_000
    assert_error(
        client.post("/v1/translate", content=buf.getvalue(), headers={"content-type": "image/png"}),
        413,
        "over the limit of 200000 bytes",
    )


def test_over_the_pixel_limit_decompression_bomb(client) -> None:
    bomb = png_bytes(size=(4000, 4000), color=(0, 0, 0))  # tiny file, 16 Mpx when decoded
    assert len(bomb) < 200_000
    assert_error(
        client.post("/v1/translate", content=bomb, headers={"content-type": "image/png"}),
        413,
        "4000x4000 pixels is over the limit",
    )


def test_animated_image(client) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert_error(
        client.post("/v1/translate", content=buf.getvalue(), headers={"content-type": "image/webp"}),
        400,
        "animated or multi-frame image (2 frames)",
    )


def test_unknown_route_and_method(client) -> None:
    assert_error(client.get("/v2/nothing"), 404, "Not Found")
    assert_error(client.get("/v1/translate"), 405, "Method Not Allowed")
    assert_error(client.delete("/healthz"), 405, "Method Not Allowed")


def test_full_queue_answers_503_with_retry_after(run_dir: Path) -> None:
    from pix2pix.inference import Pix2Pix

    translator = Translator(Pix2Pix.from_pretrained(run_dir), ServeSettings(max_queue=0))
    with pytest.raises(BadInput) as info:
        asyncio.run(translator.translate(Image.new("RGB", (8, 8))))
    assert info.value.status == 503
    app = create_app(run_dir, settings=ServeSettings(max_queue=0))
    with TestClient(app) as c:
        r = c.post("/v1/translate", content=png_bytes(), headers={"content-type": "image/png"})
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"


def test_onnx_backend_serves_the_same_image(run_dir: Path, client) -> None:
    pytest.importorskip("onnxruntime")
    app = create_app(run_dir, backend="onnx")
    data = png_bytes(color=(10, 120, 250))
    with TestClient(app) as c:
        a = np.asarray(
            Image.open(io.BytesIO(c.post("/v1/translate", content=data, headers={"content-type": "image/png"}).content))
        )
        assert c.get("/v1/model").json()["backend"] == "onnx"
    b = np.asarray(
        Image.open(
            io.BytesIO(client.post("/v1/translate", content=data, headers={"content-type": "image/png"}).content)
        )
    )
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


# --- colour hints ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hints_client(hints_run: Path):
    app = create_app(hints_run, settings=ServeSettings(max_bytes=200_000, max_pixels=512 * 512))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def sketch_and_hints(size: int = 128) -> tuple[bytes, bytes, Image.Image, Image.Image]:
    from PIL import ImageDraw

    sketch = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(sketch).ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), outline="black", width=size // 20)
    hints = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    c, half = size // 2, size // 26
    ImageDraw.Draw(hints).rectangle((c - half, c - half, c + half, c + half), fill=(229, 57, 53, 255))
    out = []
    for img in (sketch, hints):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out[0], out[1], sketch, hints


def test_translate_with_hints_matches_the_library(hints_client, hints_run: Path) -> None:
    from pix2pix.inference import Pix2Pix

    sketch_png, hints_png, sketch, hints = sketch_and_hints()
    r = hints_client.post(
        "/v1/translate", files={"image": ("s.png", sketch_png, "image/png"), "hints": ("h.png", hints_png, "image/png")}
    )
    assert r.status_code == 200, r.text
    served = np.asarray(Image.open(io.BytesIO(r.content)))
    pipe = Pix2Pix.from_pretrained(hints_run)
    assert np.array_equal(served, np.asarray(pipe(sketch, hints=hints)))
    plain = hints_client.post("/v1/translate", files={"image": ("s.png", sketch_png, "image/png")})
    assert not np.array_equal(served, np.asarray(Image.open(io.BytesIO(plain.content))))
    assert hints_client.get("/v1/model").json()["hints"] is True


def test_hints_as_json_points_match_the_library(hints_client, hints_run: Path) -> None:
    """Points as a text field and as a .json file give the library's pixels for the same points."""
    import json

    from pix2pix.inference import Pix2Pix

    sketch_png, _, sketch, _ = sketch_and_hints()
    points = [{"x": 64, "y": 64, "color": "#e53935", "size": 6}, {"x": 30, "y": 100, "color": "#1e88e5"}]
    expected = np.asarray(Pix2Pix.from_pretrained(hints_run)(sketch, hints=points))
    image = {"image": ("s.png", sketch_png, "image/png")}
    as_text = hints_client.post("/v1/translate", data={"hints": json.dumps(points)}, files=image)
    as_file = hints_client.post(
        "/v1/translate", files={**image, "hints": ("dots.json", json.dumps(points).encode(), "text/plain")}
    )
    plain = hints_client.post("/v1/translate", files=image)
    for r in (as_text, as_file, plain):
        assert r.status_code == 200, r.text
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(as_text.content))), expected)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(as_file.content))), expected)
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(plain.content))), expected)


def test_bad_hints_get_4xx(hints_client, client) -> None:
    sketch_png, hints_png, _, _ = sketch_and_hints()
    small = png_bytes(size=(40, 30))
    cases = [
        (
            {"hints": ("h.png", png_bytes(size=(20, 20)), "image/png")},
            400,
            "hints of 20x20 do not match the image's 128x128",
        ),
        (
            {"hints": ("h.png", b"junk", "image/png")},
            415,
            "the hints upload is not a PNG, JPEG or WebP image (its first bytes: b'junk')",
        ),
        ({"hints": ("h.png", b"", "image/png")}, 400, "empty hints"),
        ({"hints": ("h.png", png_bytes(size=(128, 128)), "image/png")}, 400, "hints have no alpha channel"),
    ]
    for extra, status, words in cases:
        r = hints_client.post("/v1/translate", files={"image": ("s.png", sketch_png, "image/png"), **extra})
        assert_error(r, status, words)
    r = hints_client.post("/v1/translate", data={"hints": "text"}, files={"image": ("s.png", sketch_png, "image/png")})
    assert_error(r, 400, "hints are not valid JSON")
    r = hints_client.post(
        "/v1/translate",
        data={"hints": '[{"x": 500, "y": 2, "color": "#ff0000"}]'},
        files={"image": ("s.png", sketch_png, "image/png")},
    )
    assert_error(r, 400, "500")
    # A model trained without hints says so.
    r = client.post(
        "/v1/translate", files={"image": ("s.png", small, "image/png"), "hints": ("h.png", hints_png, "image/png")}
    )
    assert_error(r, 400, "trained without hints")
    assert client.get("/v1/model").json()["hints"] is False
