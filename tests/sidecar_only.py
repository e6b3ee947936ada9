"""Colour a drawing with hints from an exported ONNX file and its sidecar alone: onnxruntime, NumPy, SciPy, Pillow.
Written from the sidecar's text (export/exporter.py: sidecar_dict), not from the library (issue 42, item 7).
python sidecar_only.py MODEL.onnx DRAWING.png POINTS.json OUT.png  (a closed-regions hints model)"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageColor
from scipy import ndimage as ndi

model, image, points, out_path = sys.argv[1:5]
S = json.load(open(model + ".json"))
FS, HS = S["full_size"], S["hints"]
K, KF = HS["constants"], FS["constants"]
assert S["config"]["model"]["hint_regions"] == "closed" and S["config"]["model"]["hint_fill"]
BLEND = S["config"]["model"]["hint_blend"]


def area(x, h, w):  # shrink: adaptive average pooling, whole pixels, separable
    rows = [np.r_[[i * x.shape[1] // h], [-(-(i + 1) * x.shape[1] // h)]] for i in range(h)]
    cols = [np.r_[[j * x.shape[2] // w], [-(-(j + 1) * x.shape[2] // w)]] for j in range(w)]
    r = np.stack([x[:, a:b].mean(1) for a, b in rows], 1)
    return np.stack([r[:, :, a:b].mean(2) for a, b in cols], 2)


def regions(x):  # labels (0 on strokes) and page flags
    lab, n = ndi.label(x.mean(0) >= K["region_line"])
    page = np.zeros(n + 1, bool)
    page[np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]]] = True
    page[0] = False
    return lab, page


def fill(hm, lab, free):  # hints.fill: lab 0 where nothing is painted
    c, (h, w) = hm.shape[0] - 1, lab.shape
    s = 1 if max(h, w) <= K["exact"] else max(1, max(h, w) // K["field"])
    gh, gw, width = -(-h // s), -(-w // s), lab.max() + 1
    ys, xs = np.nonzero((hm[c] == 1) & (lab > 0))
    if not len(ys):
        return hm
    keys, inv = np.unique((ys // s * gw + xs // s) * width + lab[ys, xs], return_inverse=True)
    m = np.bincount(inv).astype(float)
    cy, cx = np.bincount(inv, ys) / m, np.bincount(inv, xs) / m
    col = np.stack([np.bincount(inv, hm[k][ys, xs]) for k in range(c)], 1) / m[:, None]
    pad = np.zeros((gh * s, gw * s), lab.dtype)
    pad[:h, :w] = lab
    cells = [pad.reshape(gh, s, gw, s).max((1, 3)), pad[s // 2 :: s, s // 2 :: s]] if s > 1 else [lab]
    gy, gx = np.minimum(np.arange(gh) * s + (s - 1) / 2, h - 1), np.minimum(np.arange(gw) * s + (s - 1) / 2, w - 1)
    d2 = (gy[:, None, None] - cy) ** 2 + (gx[None, :, None] - cx) ** 2
    out, up = hm.copy(), np.ix_(np.arange(h) // s, np.arange(w) // s)
    for cl in cells:
        match = keys % width == cl[..., None]
        if BLEND:
            wt = np.where(match, m / np.maximum(d2, K["near"]), 0)
            held, field = wt.sum(2) > 0, wt @ col / np.maximum(wt.sum(2), 1e-30)[..., None]
        else:
            key = np.where(match, np.round(d2), np.inf)
            held, field = np.isfinite(key.min(2)), col[key.argmin(2)]
        mine = free & (lab == np.where(held, cl, -1)[up])
        out[:c, mine], out[c, mine], free = field[up][mine].T, K["filled"], free & ~mine
    return out


def owners(lab, h, w):  # compose: each working-size cell's owner and whether it is clean
    H, W = lab.shape
    cell = (np.arange(H) * h // H)[:, None] * w + (np.arange(W) * w // W)[None, :]
    count = np.zeros((h * w, lab.max() + 1))
    np.add.at(count, (cell.ravel(), lab.ravel()), 1)
    owner = count[:, 1:].argmax(1) + 1
    owner[count[:, 1:].max(1) == 0] = 0
    return owner, (count[np.arange(h * w), owner] >= KF["clean"] * count.sum(1)) & (owner > 0)


def compose(light, col, lab):  # full_size.compose_line_art, col (C, h, w) on [0, 1]
    (H, W), (c, h, w) = light.shape, col.shape
    owner, clean = owners(lab, h, w)
    if clean.any() and not clean.all():
        _, (iy, ix) = ndi.distance_transform_edt(~clean.reshape(h, w), return_indices=True)
        col, owner = col[:, iy, ix], owner.reshape(h, w)[iy, ix].ravel()
    sy = np.clip((np.arange(H) + 0.5) * h / H - 0.5, 0, h - 1)
    sx = np.clip((np.arange(W) + 0.5) * w / W - 0.5, 0, w - 1)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = (sy - y0)[:, None], (sx - x0)[None, :]
    plain, own, tot = np.zeros((c, H, W)), np.zeros((c, H, W)), np.zeros((H, W))
    for ty, tx, wt in (
        (y0, x0, (1 - fy) * (1 - fx)),
        (y0, x0 + 1, (1 - fy) * fx),
        (y0 + 1, x0, fy * (1 - fx)),
        (y0 + 1, x0 + 1, fy * fx),
    ):
        ty, tx = np.minimum(ty, h - 1), np.minimum(tx, w - 1)
        tap, ok = col.reshape(c, -1)[:, ty[:, None] * w + tx], wt * (owner[ty[:, None] * w + tx] == lab)
        plain, own, tot = plain + wt * tap, own + ok * tap, tot + ok
    hit, res = (lab > 0) & (tot > 1e-6), plain.copy()
    res[:, hit] = own[:, hit] / tot[hit]
    for r in np.unique(lab[(lab > 0) & ~hit]):
        lone, got = (lab == r) & ~hit, (lab == r) & hit
        res[:, lone] = (res[:, got] if got.any() else plain[:, lone]).mean(1)[:, None]
    return res * light


img = Image.open(image).convert("RGB")
x = np.asarray(img, np.float64).transpose(2, 0, 1) / 127.5 - 1
H, W = x.shape[1:]
hm = np.zeros((4, H, W))
for p in json.load(open(points)):
    sz, cy, cx = round(p.get("size", 2 * max(1, min(H, W) // 64) + 1)), int(p["y"]), int(p["x"])
    y0, x0 = max(cy - (sz - 1) // 2, 0), max(cx - (sz - 1) // 2, 0)
    hm[:, y0 : cy - (sz - 1) // 2 + sz, x0 : cx - (sz - 1) // 2 + sz] = np.r_[
        np.array(ImageColor.getrgb(p["color"])) / 127.5 - 1, 1
    ][:, None, None]
sc = S["train_size"] / max(H, W)
h, w = max(1, round(H * sc)), max(1, round(W * sc))
assert h <= H and w <= W and (h, w) != (H, W)
small = np.clip(area(x, h, w), -1, 1)
mk, sm = area(hm[3:], h, w), area(hm[:3] * hm[3:], h, w)
hs = np.concatenate([np.where(mk > 0, sm / np.maximum(mk, 1e-12), 0), (mk > 0) * 1.0])
lab, page = regions(small)
hs = fill(hs, np.where(page[lab], 0, lab), hs[3] == 0)
mult = S["size_multiple"]
net = np.concatenate(
    [
        np.pad(small, ((0, 0), (0, -h % mult), (0, -w % mult)), mode="edge"),
        np.pad(hs, ((0, 0), (0, -h % mult), (0, -w % mult))),
    ]
)
y = ort.InferenceSession(model).run(None, {S["input"]["name"]: net[None].astype(np.float32)})[0][0, :, :h, :w]
light, x01 = (x.mean(0) + 1) / 2, (x + 1) / 2
spread = (x01.max(0) - x01.min(0)).ravel()[:: max(1, H * W // 200000)]
assert np.quantile(spread, 0.99) <= KF["grey_spread"] and (light >= KF["line"]).mean() >= KF["light_share"]  # line art
lab_f, page_f = regions(x)
res = compose(light, (y + 1) / 2, ndi.label(light >= KF["line"])[0])
spots, n = ndi.label(hm[3] == 1)
home = {}
for i, (cy, cx) in enumerate(ndi.center_of_mass(hm[3] == 1, spots, range(1, n + 1)), 1):
    cy, cx = round(cy), round(cx)
    labs, cnt = np.unique(lab_f[(spots == i) & (lab_f > 0)], return_counts=True)
    home[i] = lab_f[cy, cx] if spots[cy, cx] == i and lab_f[cy, cx] > 0 else (labs[cnt.argmax()] if len(labs) else 0)
counted = np.isin(spots, list(home)) & (lab_f == np.vectorize(lambda v: home.get(v, -1))(spots)) & (lab_f > 0)
owner, clean = owners(lab_f, h, w)
diff = np.abs(2 * res - 1 - hm[:3]).mean(0)  # the output (on -1..1) against the hints under each region's spots


def followed(r):
    return diff[counted & (lab_f == r)].mean() < S["hints"]["constants"]["followed"]


carried = [r for r in set(home.values()) if r and (page_f[r] or r not in owner[clean]) and not followed(r)]
keep = np.where(np.isin(lab_f, carried), lab_f, 0)
filled = fill(hm * counted, keep, keep > 0)
res[:, keep > 0] = ((filled[:3] + 1) / 2 * light)[:, keep > 0]
Image.fromarray(np.clip(np.round(res * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)).save(out_path)
