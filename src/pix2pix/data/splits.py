"""Deterministic train / val / test splits: a stable hash of each name, so the same name always
lands in the same split and adding data never moves what was already split."""

from __future__ import annotations

from .. import seeding

DEFAULT_FRACTIONS = {"val": 0.05, "test": 0.05}  # the rest is train


def check_fractions(fr: dict[str, float]) -> None:
    for k, v in fr.items():
        if not 0 <= v < 1:
            raise ValueError(f"{k} fraction must be in [0, 1), got {v}")
    if fr.get("val", 0) + fr.get("test", 0) >= 1:
        raise ValueError(f"val + test fractions must leave some training data, got {fr['val']} + {fr['test']}")


def split_of_name(name: str, fractions: dict[str, float] | None = None) -> str:
    """'train', 'val' or 'test' from the first 8 bytes of sha256(name) as a number in [0, 1)."""
    fr = {**DEFAULT_FRACTIONS, **(fractions or {})}
    check_fractions(fr)
    u = seeding.name_unit(name)
    if u < fr["test"]:
        return "test"
    if u < fr["test"] + fr["val"]:
        return "val"
    return "train"
