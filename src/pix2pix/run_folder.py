"""The run folder: what a run writes and what everything that reads a run reads (inference,
evaluation, export, the server, resume). It sits below training: reading a run never imports it.

    RUN_DIR/config.json                      the resolved config of the run
    RUN_DIR/checkpoints/last/                written every `save_every` steps and at the end
        config.json  meta.json  training_state.pt (optimizers, schedules, RNG, the method's extras)
        NAME.safetensors                     one per network of the method: pix2pix's generator and
                                             discriminator; CycleGAN's generator (A -> B),
                                             generator_ba, discriminator_a and discriminator_b
        NAME_ema.safetensors                 with ema_decay > 0: the averaged weights inference uses
    RUN_DIR/checkpoints/best/                the best by the selected metric (when asked for)

Each checkpoint folder is written under a temporary name and renamed into place, so an
interrupted save never leaves a half-written checkpoint, and a write that fails (a full disk)
ends in one `RunWriteError` naming the path, the error and the last good checkpoint. One process
writes a run at a time (`lock_run`: an OS advisory lock on RUN_DIR/.lock, released when the process
ends, however it ends); readers never take it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from .config import Config
from .io import RunWriteError, ordinary_mode

GENERATOR_FILE = "generator.safetensors"  # every method has a network called "generator" (A -> B)
STATE_FILE = "training_state.pt"
META_FILE = "meta.json"
CONFIG_FILE = "config.json"


CHECKPOINTS = "checkpoints"
LOCK_FILE = ".lock"


class RunLocked(ValueError):
    """Another live process writes this run folder."""


@contextlib.contextmanager
def lock_run(run_dir: str | Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock for the block: one writer per run folder. A second writer gets `RunLocked`
    naming the folder and the holder's PID. The lock is the OS's (flock): a killed process never
    leaves a stale one. Where the OS has no flock (Windows), the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise RunLocked(
                f"{run_dir} is being written by another process (PID {holder}); one writer per run "
                "folder: wait for it to end, or stop it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the lock


def run_root(folder: str | Path) -> Path:
    """The run folder a path belongs to: RUN for RUN or RUN/checkpoints/NAME."""
    folder = Path(folder)
    return folder.parent.parent if folder.parent.name == CHECKPOINTS else folder


def writing_into(run_dir: str | Path, out: str | Path) -> contextlib.AbstractContextManager:
    """`lock_run` on the run that `run_dir` belongs to where `out` lies inside it (an export or a
    report written into the run), else nothing: what writes elsewhere only reads the run."""
    root = run_root(run_dir).resolve()
    out = Path(out).resolve()
    return lock_run(root) if root == out or root in out.parents else contextlib.nullcontext()


def last_good(run_dir: str | Path) -> str:
    """The newest checkpoint a failed write leaves, for its error message."""
    have = [checkpoint_path(run_dir, n) for n in ("last", "best")]
    return ", ".join(str(p) for p in have if is_checkpoint_folder(p)) or "none"


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path`; a failed write is a RunWriteError naming the path."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as err:
        raise RunWriteError(f"{path}: {err.strerror or err}") from None


def checkpoint_path(run_dir: str | Path, name: str) -> Path:
    """RUN_DIR/checkpoints/NAME: where checkpoint `name` of a run is (whether or not it exists yet)."""
    return Path(run_dir) / CHECKPOINTS / name


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers."""
    while True:
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod  # torch.compile
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


def state_dict_for_save(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(module).state_dict().items()}


def weights_file(name: str, *, ema: bool = False) -> str:
    """The file of network `name` in a checkpoint folder: NAME.safetensors or NAME_ema.safetensors."""
    return f"{name}{'_ema' if ema else ''}.safetensors"


def save_checkpoint(
    folder: str | Path,
    *,
    config: Config,
    networks: dict[str, nn.Module],
    ema: dict[str, nn.Module] | None = None,
    training_state: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (temp folder + rename): each network as NAME.safetensors,
    each EMA copy as NAME_ema.safetensors."""
    from . import __version__

    if "generator" not in networks:
        raise ValueError(f"a checkpoint needs a 'generator' network, got {', '.join(networks) or 'none'}")
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
        ordinary_mode(tmp, directory=True)  # it becomes the checkpoint folder
    except OSError as err:
        raise RunWriteError(f"cannot write checkpoint {folder}: {err.strerror or err}") from None
    try:
        # Every file is serialised in memory and written with plain file IO, so a full disk is one
        # OSError naming the file (torch.save's own writer reports it as an opaque RuntimeError).
        for name, module in networks.items():
            write_bytes(tmp / weights_file(name), safetensors_bytes(state_dict_for_save(module)))
        for name, module in (ema or {}).items():
            write_bytes(tmp / weights_file(name, ema=True), safetensors_bytes(state_dict_for_save(module)))
        if training_state is not None:
            buf = io.BytesIO()
            torch.save(training_state, buf)
            write_bytes(tmp / STATE_FILE, buf.getvalue())
        write_bytes(tmp / CONFIG_FILE, (json.dumps(config.to_dict(), indent=2) + "\n").encode())
        meta_text = json.dumps({"pix2pix_version": __version__, **(meta or {})}, indent=2) + "\n"
        write_bytes(tmp / META_FILE, meta_text.encode())
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except RunWriteError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        run_dir = folder.parent.parent if folder.parent.name == CHECKPOINTS else folder.parent
        raise RunWriteError(
            f"cannot write checkpoint {folder}: {err}; the last good checkpoint: {last_good(run_dir)}"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def is_checkpoint_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / GENERATOR_FILE).is_file() and (folder / CONFIG_FILE).is_file()


AUTO_CHECKPOINT = "auto"  # `best` where the run kept one (select_by), else `last`: what every figure is measured on


def checkpoint_dir(run_dir: str | Path, name: str = "last") -> Path:
    """The checkpoint folder `name` of a run (AUTO_CHECKPOINT: best where there is one, else last),
    or `run_dir` itself where it is a checkpoint folder (RUN/checkpoints/best); errors name the run
    folder, what is missing and the checkpoints it has."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    if is_checkpoint_folder(run_dir):
        return run_dir
    if name == AUTO_CHECKPOINT:
        name = "best" if is_checkpoint_folder(checkpoint_path(run_dir, "best")) else "last"
    folder = checkpoint_path(run_dir, name)
    if not folder.is_dir():
        # An interrupted swap leaves the previous checkpoint under its .old name.
        old = folder.with_name(f".{name}.old")
        if old.is_dir() and (old / GENERATOR_FILE).is_file():
            return old
        have = (
            sorted(p.name for p in folder.parent.glob("[!.]*") if is_checkpoint_folder(p))
            if folder.parent.is_dir()
            else []
        )
        raise FileNotFoundError(f"{run_dir}: no checkpoint {name!r}; it has: {', '.join(have) or 'none'}")
    if not (folder / GENERATOR_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no weights ({GENERATOR_FILE} is missing)")
    return folder


def load_config(folder: str | Path) -> Config:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG_FILE}")
    return Config.from_dict(json.loads(path.read_text()))


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into `module`, with an error naming the file on mismatch."""
    path = Path(path)
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path}: unreadable weights ({err})") from None
    try:
        unwrap(module).load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{path}: weights do not fit the configured model ({first})") from None


def load_training_state(folder: str | Path) -> dict[str, Any]:
    """The optimizers, schedules, RNG and method state of a checkpoint, by network name."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no training state ({STATE_FILE}); cannot resume")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "opt_g" in state:  # written before methods: pix2pix's two optimizers under fixed keys
        state["optimizers"] = {"generator": state.pop("opt_g"), "discriminator": state.pop("opt_d")}
        state["schedulers"] = {"generator": state.pop("sched_g"), "discriminator": state.pop("sched_d")}
    return state


def read_meta(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def data_location(root: str, run_dir: Path) -> dict[str, str]:
    """Where a run's dataset was when it trained, recorded in every checkpoint's meta.json: the path
    as the user gave it, absolute, and relative to the run folder (which survives copying the run
    and its data together)."""
    if not root:
        return {}
    absolute = Path(root).resolve()
    try:
        from_run = os.path.relpath(absolute, Path(run_dir).resolve())
    except ValueError:  # another drive (Windows)
        from_run = str(absolute)
    return {"as_given": root, "absolute": str(absolute), "from_run": from_run}


def resolve_data_root(folder: str | Path, config: Config) -> str:
    """The dataset of the run a checkpoint folder belongs to, found from where it is read: the path
    as given (from the current folder), then relative to the run folder, then the absolute path
    recorded at training. Falls back to the path as given, so errors name what the user wrote."""
    folder = Path(folder)
    given = config.data.root
    location = read_meta(folder).get("data_root", {})
    run_dir = folder.parent.parent if folder.parent.name == CHECKPOINTS else folder
    candidates = [Path(given)] if given else []
    if location.get("from_run"):
        candidates.append(run_dir / location["from_run"])
    if location.get("absolute"):
        candidates.append(Path(location["absolute"]))
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate)
    return given


# The fields that shape a generator's weights: a run can start from another's (--init-from) only where
# they agree. The discriminator is taken too where its own fields agree, else it starts fresh.
GENERATOR_SHAPE = ("method", "generator", "ngf", "norm", "hints", "input_nc", "output_nc")
DISCRIMINATOR_SHAPE = ("discriminator", "ndf", "n_layers_d", "norm", "input_nc", "output_nc")


def describe_generator(model: Any) -> str:
    hints = ", hints" if model.hints else ""
    channels = f"{model.input_nc}->{model.output_nc}{hints}"
    return f"{model.method} {model.generator} (ngf {model.ngf}, {model.norm} norm, {channels})"


def check_same_generator(source: Path, theirs: Any, ours: Any) -> None:
    """One line naming both models where `theirs` (a ModelConfig) cannot start `ours`."""
    differ = [name for name in GENERATOR_SHAPE if getattr(theirs, name) != getattr(ours, name)]
    if differ:
        raise ValueError(
            f"cannot start from {source}: its generator is {describe_generator(theirs)}, this run's is "
            f"{describe_generator(ours)} (they differ in {', '.join(differ)})"
        )


def load_init_weights(
    folder: Path, theirs: Any, ours: Any, networks: dict[str, nn.Module], generators: set[str]
) -> list[str]:
    """Load a run's weights into a new run's `networks`: each generator from its averaged (EMA) weights
    where the run kept them, as inference does, else its raw weights; each discriminator where the
    checkpoint has one of the same shape. Returns the names loaded."""
    check_same_generator(folder, theirs, ours)
    same_d = all(getattr(theirs, name) == getattr(ours, name) for name in DISCRIMINATOR_SHAPE)
    loaded = []
    for name, net in networks.items():
        if name in generators:
            ema = folder / weights_file(name, ema=True)
            load_weights(net, ema if ema.is_file() else folder / weights_file(name))
        elif same_d and (folder / weights_file(name)).is_file():
            load_weights(net, folder / weights_file(name))
        else:
            continue
        loaded.append(name)
    return loaded
