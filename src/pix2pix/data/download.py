"""`pix2pix data download NAME`: the field's standard datasets, fetched only when a user asks.

A catalogue of the paired sets of the pix2pix paper and the unpaired sets of the CycleGAN paper,
as the authors host them, with each set's archive, size, layout, the direction of its usual task,
licence and citation. The download

- streams to ROOT/.ARCHIVE.part with a progress bar, and resumes a partial file with an HTTP
  Range request (a server that ignores the range starts it over);
- checks the archive's size against the server's and the catalogue's, and its SHA-256 where the
  catalogue records one (the hash of every download is printed, so it can be recorded); a
  mismatch deletes the file and says so;
- extracts into a temporary folder beside the target and renames it into place, so an
  interrupted run never leaves half a dataset; members that would land outside that folder
  (absolute paths, `..`, links) stop the extraction;
- takes `mirror` as the base URL instead of the authors' server (a local mirror or a proxy).

Nothing else in pix2pix touches the network. Only the standard library is used (urllib).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ..io import ordinary_mode

log = logging.getLogger(__name__)

PIX2PIX_BASE = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
CYCLEGAN_BASE = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
PIX2PIX_PAPER = "Isola, Zhu, Zhou, Efros. Image-to-Image Translation with Conditional Adversarial Networks. CVPR 2017"
CYCLEGAN_PAPER = (
    "Zhu, Park, Isola, Efros. Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial "
    "Networks. ICCV 2017"
)
RESEARCH = "research use under the terms of the original source (see the citation); not cleared for commercial use"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: str  # "paired" (aligned A|B files) or "unpaired" (trainA/ trainB/ testA/ testB/)
    description: str
    archive: str  # file name on the server (and a mirror)
    base: str  # base URL of the authors' server
    approx_size: str  # as the authors list it, for a user deciding whether to download
    layout: str
    direction: str  # --direction for the usual task
    task: str
    licence: str
    citation: str
    size: int | None = None  # exact archive bytes, checked when known
    sha256: str | None = None  # checked when known
    pointer: str = ""  # not downloadable here: where to get it instead
    counts: tuple[tuple[str, int], ...] = ()  # images per split folder, as the archive holds them (empty: not recorded)
    reference: str = ""  # the reference repository's script and name for the same archive
    aliases: tuple[str, ...] = ()  # other names that find this entry (the reference's, where ours differs)

    @property
    def dataset_mode(self) -> str:
        return {"paired": "aligned", "unpaired": "unpaired"}.get(self.kind, "none (not pairs)")


def _paired(
    name: str, description: str, approx: str, layout: str, direction: str, task: str, citation: str, **kw: object
) -> DatasetEntry:
    kw.setdefault("reference", f"datasets/download_pix2pix_dataset.sh {name}")
    kw.setdefault("aliases", (f"pix2pix/{name}",))
    return DatasetEntry(
        name=name,
        kind="paired",
        description=description,
        archive=f"{name}.tar.gz",
        base=PIX2PIX_BASE,
        approx_size=approx,
        layout=layout,
        direction=direction,
        task=task,
        licence=RESEARCH,
        citation=f"{citation}; as prepared in {PIX2PIX_PAPER}",
        **kw,
    )  # type: ignore[arg-type]


def _unpaired(
    name: str, description: str, approx: str, task: str, citation: str, *, archive: str = "", **kw: object
) -> DatasetEntry:
    archive = archive or f"{name}.zip"
    ref_name = archive.removesuffix(".zip")
    kw.setdefault("reference", f"datasets/download_cyclegan_dataset.sh {ref_name}")
    kw.setdefault("aliases", (f"cyclegan/{ref_name}",))
    kw.setdefault("layout", "trainA/ trainB/ testA/ testB/")
    return DatasetEntry(
        name=name,
        kind=str(kw.pop("kind", "unpaired")),
        description=description,
        archive=archive,
        base=CYCLEGAN_BASE,
        approx_size=approx,
        direction="AtoB",
        task=task,
        licence=RESEARCH,
        citation=f"{citation}; as prepared in {CYCLEGAN_PAPER}",
        **kw,
    )  # type: ignore[arg-type]


def _splits(**counts: int) -> tuple[tuple[str, int], ...]:
    return tuple(counts.items())


CATALOGUE: dict[str, DatasetEntry] = {
    e.name: e
    for e in [
        _paired(
            "facades",
            "CMP Facades: architectural labels and photos",
            "29 MB",
            "train/ val/ test/ (A photo | B labels)",
            "BtoA",
            "labels -> photo",
            "Tyleček and Šára. Spatial Pattern Templates for Recognition of Objects with "
            "Regular Structure. GCPR 2013 (CMP Facade Database)",
            counts=_splits(train=400, val=100, test=106),
        ),
        _paired(
            "cityscapes",
            "Cityscapes: street photos and semantic labels",
            "99 MB",
            "train/ val/ (A photo | B labels)",
            "BtoA",
            "labels -> photo",
            "Cordts et al. The Cityscapes Dataset for Semantic Urban Scene Understanding. CVPR 2016",
            counts=_splits(train=2975, val=500),
            pointer="Cityscapes is licensed per user: register and download leftImg8bit_trainvaltest.zip and "
            "gtFine_trainvaltest.zip at https://www.cityscapes-dataset.com, unzip both, then make the pairs with "
            "`pix2pix data cityscapes --left-img8bit leftImg8bit --gt-fine gtFine --out datasets/cityscapes`",
        ),
        _paired(
            "maps",
            "Google Maps: aerial photos and map tiles of New York",
            "239 MB",
            "train/ val/ (A aerial | B map)",
            "AtoB",
            "aerial -> map",
            "Map and aerial tiles from Google Maps",
            counts=_splits(train=1096, val=1098),
        ),
        _paired(
            "edges2shoes",
            "UT Zappos50K shoes with HED edges",
            "2 GB",
            "train/ val/ (A edges | B photo)",
            "AtoB",
            "edges -> photo",
            "Yu and Grauman. Fine-Grained Visual Comparisons with Local Learning. CVPR 2014 "
            "(UT Zappos50K); edges by Xie and Tu. Holistically-Nested Edge Detection. ICCV 2015",
            counts=_splits(train=49825, val=200),
        ),
        _paired(
            "edges2handbags",
            "Amazon handbags with HED edges",
            "8 GB",
            "train/ val/ (A edges | B photo)",
            "AtoB",
            "edges -> photo",
            "Zhu, Krähenbühl, Shechtman, Efros. Generative Visual Manipulation on the "
            "Natural Image Manifold. ECCV 2016; edges by HED (Xie and Tu 2015)",
            counts=_splits(train=138567, val=200),
        ),
        _paired(
            "night2day",
            "Transient Attributes webcams: night and day views of the same scenes",
            "1.9 GB",
            "train/ val/ test/ (A night | B day)",
            "AtoB",
            "night -> day",
            "Laffont, Ren, Tao, Qian, Hays. Transient Attributes for High-Level Understanding and Editing of Outdoor "
            "Scenes. SIGGRAPH 2014",
            counts=_splits(train=17823, val=2287, test=10151),
        ),
        _unpaired(
            "horse2zebra",
            "ImageNet photos of horses and of zebras",
            "111 MB",
            "horse -> zebra",
            "Deng et al. ImageNet: A Large-Scale Hierarchical Image Database. CVPR 2009 (wild horse, zebra)",
            counts=_splits(trainA=1067, trainB=1334, testA=120, testB=140),
        ),
        _unpaired(
            "apple2orange",
            "ImageNet photos of apples and of oranges",
            "75 MB",
            "apple -> orange",
            "Deng et al. ImageNet. CVPR 2009 (apple, navel orange)",
            counts=_splits(trainA=995, trainB=1019, testA=266, testB=248),
        ),
        _unpaired(
            "summer2winter_yosemite",
            "Flickr photos of Yosemite in summer and in winter",
            "126 MB",
            "summer -> winter",
            "Photos from Flickr",
            counts=_splits(trainA=1231, trainB=962, testA=309, testB=238),
        ),
        _unpaired(
            "monet2photo",
            "Monet paintings and landscape photos",
            "291 MB",
            "painting -> photo",
            "Paintings from WikiArt; photos from Flickr",
            counts=_splits(trainA=1072, trainB=6287, testA=121, testB=751),
        ),
        _unpaired(
            "cezanne2photo",
            "Cézanne paintings and landscape photos",
            "267 MB",
            "painting -> photo",
            "Paintings from WikiArt; photos from Flickr",
            counts=_splits(trainA=525, trainB=6287, testA=58, testB=751),
        ),
        _unpaired(
            "ukiyoe2photo",
            "Ukiyo-e prints and landscape photos",
            "279 MB",
            "print -> photo",
            "Prints from WikiArt; photos from Flickr",
            counts=_splits(trainA=562, trainB=6287, testA=263, testB=751),
        ),
        _unpaired(
            "vangogh2photo",
            "Van Gogh paintings and landscape photos",
            "292 MB",
            "painting -> photo",
            "Paintings from WikiArt; photos from Flickr",
            counts=_splits(trainA=400, trainB=6287, testA=400, testB=751),
        ),
        _unpaired(
            "iphone2dslr_flower",
            "Flower photos from iPhones and from DSLRs",
            "324 MB",
            "phone photo -> shallow depth of field",
            "Photos from Flickr",
            counts=_splits(trainA=1182, trainB=3325, testA=569, testB=480),
        ),
        # The CycleGAN script's maps, facades and cityscapes are the unpaired archives of those sets: here they are
        # NAME_unpaired (the plain names are the pix2pix script's paired sets), and the reference's names are aliases.
        _unpaired(
            "maps_unpaired",
            "Google Maps aerial photos and map tiles, as two unpaired sets",
            "1.4 GB",
            "aerial -> map",
            "Map and aerial tiles from Google Maps",
            archive="maps.zip",
            counts=_splits(trainA=1096, trainB=1096, testA=1098, testB=1098),
        ),
        _unpaired(
            "facades_unpaired",
            "CMP Facades photos and labels, as two unpaired sets",
            "34 MB",
            "labels -> photo",
            "Tyleček and Šára. GCPR 2013 (CMP Facade Database)",
            archive="facades.zip",
            counts=_splits(trainA=400, trainB=400, testA=106, testB=106),
        ),
        _unpaired(
            "cityscapes_unpaired",
            "Cityscapes photos and label colours, as two unpaired sets",
            "267 MB",
            "labels -> photo",
            "Cordts et al. CVPR 2016",
            archive="cityscapes.zip",
            pointer="Cityscapes is licensed per user: make the pairs from its own archives with `pix2pix data "
            "cityscapes` (see the paired entry) and train CycleGAN on them with --model cyclegan",
        ),
        _unpaired(
            "ae_photos",
            "A small set of test photos from the CycleGAN authors",
            "10 MB",
            "photo -> painting styles",
            "The CycleGAN authors' test photos",
        ),
        _unpaired(
            "grumpifycat",
            "Cat faces and Grumpy Cat faces",
            "19 MB",
            "cat -> Grumpy Cat",
            "Cat photos as prepared by the CycleGAN / CUT authors",
        ),
        # The reference's smoke-test sets (its scripts/test_before_push.py), on the CycleGAN server.
        _unpaired(
            "mini",
            "A handful of unpaired images, for a smoke test of CycleGAN training",
            "?",
            "smoke test",
            "The CycleGAN authors' test set",
        ),
        _unpaired(
            "mini_pix2pix",
            "A handful of aligned pairs, for a smoke test of pix2pix training",
            "?",
            "smoke test",
            "The pix2pix authors' test set",
            kind="paired",
            layout="train/ test/ (aligned A | B)",
        ),
        _unpaired(
            "mini_colorization",
            "A handful of colour photos for the reference's colorization model",
            "?",
            "grey -> colour",
            "The pix2pix authors' test set",
            kind="images",
            layout=(
                "train/ test/ (colour photos only: make pairs with `pix2pix data sketch`, or grey ones with your tools)"
            ),
        ),
    ]
}
ALIASES: dict[str, str] = {alias: e.name for e in CATALOGUE.values() for alias in e.aliases}


def counts_text(entry: DatasetEntry) -> str:
    if not entry.counts:
        return "counts not recorded"
    return ", ".join(f"{split} {n:,}" for split, n in entry.counts)


def catalogue_lines() -> list[str]:
    """`data download --list`: one line per dataset (`entry_lines` has the rest)."""
    lines = [
        f"{e.name:24s} {e.kind:8s} {e.approx_size:>7s}  {e.description}"
        + (f" (--direction {e.direction})" if e.kind in ("paired", "unpaired") else "")
        for e in CATALOGUE.values()
    ]
    return lines + ["", "details of one (splits, layout, task, source, licence, citation): --list NAME"]


def entry_lines(e: DatasetEntry) -> list[str]:
    """`data download --list NAME`: one dataset's block."""
    lines = [
        f"{e.name:24s} {e.kind:8s} {e.approx_size:>7s}  {e.description}",
        f"{'':24s} {counts_text(e)}; layout {e.layout}",
        f"{'':24s} task {e.task} (--direction {e.direction}, dataset_mode {e.dataset_mode})",
        f"{'':24s} archive {e.base}/{e.archive}; the reference: {e.reference}"
        + (f" (also found as {', '.join(e.aliases)})" if e.aliases else ""),
        f"{'':24s} {'licence: ' + e.licence}",
        f"{'':24s} cite: {e.citation}",
    ]
    if e.pointer:
        lines.append(f"{'':24s} NOT downloaded by pix2pix: {e.pointer}")
    return lines


def entry_for(name: str, catalogue: dict[str, DatasetEntry] | None = None) -> DatasetEntry:
    cat = CATALOGUE if catalogue is None else catalogue
    name = ALIASES.get(name, name) if catalogue is None else name
    if name not in cat:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(cat)} (see `pix2pix data download --list`)")
    return cat[name]


def download_dataset(
    name: str,
    root: str | Path = "datasets",
    *,
    mirror: str | None = None,
    catalogue: dict[str, DatasetEntry] | None = None,
    keep_archive: bool = False,
    progress: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and extract dataset `name` into root/NAME; return that folder."""
    entry = entry_for(name, catalogue)
    if entry.pointer:
        raise ValueError(f"{name}: {entry.pointer}")
    root = Path(root)
    dest = root / entry.name
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} already exists: remove it to download {name} again")
    root.mkdir(parents=True, exist_ok=True)
    url = f"{(mirror or entry.base).rstrip('/')}/{entry.archive}"
    part = root / f".{entry.archive}.part"
    total = _fetch(url, part, expected=entry.size, progress=progress, timeout=timeout)
    _verify(part, entry, total)
    _extract(part, entry, root, dest)
    if keep_archive:
        part.rename(root / entry.archive)
    else:
        part.unlink(missing_ok=True)
    return dest


def _fetch(url: str, part: Path, *, expected: int | None, progress: bool, timeout: float) -> int:
    """Stream `url` into `part`, resuming from its current size; return the archive's total size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(
        url, headers={"User-Agent": "pix2pix-download", **({"Range": f"bytes={have}-"} if have else {})}
    )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()  # the error holds the response and its socket
        if err.code == 416 and have and expected in (None, have):
            return have  # the partial file is already whole
        if err.code == 416:
            part.unlink(missing_ok=True)
            raise ValueError(
                f"{url}: the server cannot resume from byte {have}; the partial file was deleted, run the command again"
            ) from None
        raise ValueError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ValueError(f"{url}: cannot connect ({reason})") from None
    with response:
        if response.status == 206:
            total = _content_range_total(response.headers.get("Content-Range"), url)
            mode = "ab"
        else:  # 200: the whole file (a server that ignores Range starts over)
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else -1
        if expected is not None and total not in (-1, expected):
            part.unlink(missing_ok=True)
            raise ValueError(
                f"{url}: the server's file is {total} bytes, the catalogue expects {expected}; not downloaded"
            )
        bar = tqdm(
            total=total if total > 0 else None,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"download {url.rsplit('/', 1)[-1]}",
            disable=not progress,
        )
        got = have
        try:
            with part.open(mode) as fh:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (TimeoutError, http.client.IncompleteRead, ConnectionError, OSError) as err:
            raise ValueError(
                f"{url}: download interrupted after {got} of {total if total > 0 else '?'} bytes ({err}); "
                "run the same command again to resume"
            ) from None
        finally:
            bar.close()
    if total > 0 and got != total:
        raise ValueError(
            f"{url}: download interrupted after {got} of {total} bytes; run the same command again to resume"
        )
    return got if total <= 0 else total


def _content_range_total(value: str | None, url: str) -> int:
    # "bytes 100-999/1000"
    if not value or "/" not in value:
        return -1
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else -1


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(part: Path, entry: DatasetEntry, total: int) -> None:
    size = part.stat().st_size
    want = entry.size if entry.size is not None else total
    if want > 0 and size != want:
        part.unlink(missing_ok=True)
        raise ValueError(f"{entry.archive}: {size} bytes, expected {want}; the file was deleted")
    digest = sha256_of(part)
    if entry.sha256 is not None and digest != entry.sha256:
        part.unlink(missing_ok=True)
        raise ValueError(
            f"{entry.archive}: SHA-256 {digest} does not match the catalogue's {entry.sha256}; the file was deleted"
        )
    log.info(
        "%s: %d bytes, SHA-256 %s%s", entry.archive, size, digest, "" if entry.sha256 else " (not in the catalogue yet)"
    )


def _check_member(name: str, is_link: bool, archive: str) -> None:
    path = PurePosixPath(name)
    if is_link:
        raise ValueError(f"{archive}: member {name!r} is a link; refusing to extract")
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts or "\\.." in name or "..\\" in name:
        raise ValueError(f"{archive}: member {name!r} would land outside the dataset folder; refusing to extract")


def _extract(part: Path, entry: DatasetEntry, root: Path, dest: Path) -> None:
    """Extract into a temporary folder under `root`, check every member first, then rename into place."""
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{entry.name}.extract-"))
    ordinary_mode(tmp, directory=True)  # it is renamed into place
    try:
        try:
            if zipfile.is_zipfile(part):
                with zipfile.ZipFile(part) as zf:
                    for info in zf.infolist():
                        mode = info.external_attr >> 16
                        _check_member(info.filename, (mode & 0o170000) == 0o120000, entry.archive)
                    zf.extractall(tmp)
            else:
                with tarfile.open(part) as tf:
                    members = tf.getmembers()
                    for m in members:
                        _check_member(m.name, m.issym() or m.islnk(), entry.archive)
                        if not (m.isfile() or m.isdir()):
                            raise ValueError(f"{entry.archive}: member {m.name!r} is not a file or folder; refusing")
                    tf.extractall(tmp, members=members, filter="data") if hasattr(
                        tarfile, "data_filter"
                    ) else tf.extractall(tmp, members=members)  # noqa: E501
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
            part.unlink(missing_ok=True)
            detail = " ".join(str(err).split())  # tarfile's message spans lines; ours is one
            raise ValueError(f"{entry.archive}: not a readable archive ({detail}); the file was deleted") from None
        except ValueError:
            part.unlink(missing_ok=True)
            raise
        # The archives hold NAME/...: move that folder (or everything, if not) into place.
        inner = [p for p in tmp.iterdir() if not p.name.startswith(".")]
        source = inner[0] if len(inner) == 1 and inner[0].is_dir() else tmp
        if not any(source.iterdir()):
            raise ValueError(f"{entry.archive}: the archive is empty")
        if dest.exists():
            dest.rmdir()  # an empty folder (a non-empty one stopped the download earlier)
        source.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
