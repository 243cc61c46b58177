"""Helpers for the model tests: reading the reference TSVs and golden fixtures."""
import ast
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def read_tsv(name: str):
    """-> (list of (key, shape tuple), header lines) of a reference state_dict TSV."""
    rows, header = [], []
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("#"):
            header.append(line)
        elif line.strip():
            key, shape = line.split("\t")
            rows.append((key, () if shape == "scalar" else tuple(int(x) for x in shape.split("x"))))
    return rows, header


def tsv_constructor_kwargs(name: str, prefix: str) -> dict:
    _, header = read_tsv(name)
    line = next(h for h in header if h.startswith(prefix))
    kwargs = ast.literal_eval(line.split("kwargs:", 1)[1].strip())
    kwargs.pop("_positional", None)
    return kwargs


def load_golden(name: str) -> dict:
    return torch.load(FIXTURES / name, weights_only=True)


def shift_for(key: str):
    """The ``shift=`` argument reproducing a golden output key (None for 'noshift')."""
    if key == "noshift":
        return None
    if key.startswith("R="):
        return int(key[2:])
    if key.startswith("perblock="):
        return [int(x) for x in key[len("perblock="):].split(",")]
    raise KeyError(key)


class ShiftRecorder:
    """Records the RS-MMA window offsets of every call of ``model.draw_shifts`` (one per forward pass);
    ``last`` is the most recent. Wraps the method on this instance only."""

    def __init__(self, model):
        self.calls = []
        draw = model.draw_shifts

        def recording(*args, **kwargs):
            shifts = draw(*args, **kwargs)
            self.calls.append(list(shifts))
            return shifts

        model.draw_shifts = recording

    @property
    def last(self) -> list:
        return self.calls[-1]
