"""Writing and reading a fitted estimator's state without pickle.

A saved estimator is a directory holding two files:

``weights.pt``
    The model's ``state_dict`` (a dict of tensors only) written by
    ``torch.save``, read back with ``torch.load(..., weights_only=True)``, which
    refuses anything but tensors and plain containers: loading never runs code.
``model.json``
    Format name and version, package version, the estimator's state as plain
    JSON values (its ``to_state()``: parameters, column schema, statistics,
    cluster-assignment rule, ...) and the SHA-256 of ``weights.pt``.

Both files are written to a temporary file and moved into place with
``os.replace``, so an interrupted save never leaves a partial file under
either name. :func:`load` raises ``ValueError`` for a file of another format
or version, a weights file whose SHA-256 does not match (corruption), or a JSON
file that cannot be parsed. This module knows nothing of the estimators: each
owns its ``to_state`` / ``from_state``
(:meth:`~ciss_vae.imputer.CISSVAEImputer.to_state`).

Column labels, cluster labels and parameters must be JSON values (str, int,
float, bool, None, lists and str-keyed dicts of them); others raise
``TypeError`` at save time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import torch

JSON_NAME = "model.json"
WEIGHTS_NAME = "weights.pt"


def _package_version() -> str:
    try:
        return version("ciss-vae")
    except PackageNotFoundError:
        return "0.0.0"


def finite_or_none(v) -> float | None:
    """A float for JSON, None for NaN (a column with no observed value has no bound)."""
    v = float(v)
    return v if np.isfinite(v) else None


def plain(value, what: str):
    """``value`` as a JSON value (numpy scalars and arrays, tuples, torch devices converted)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (list, tuple, np.ndarray, pd.Index)):
        return [plain(v, what) for v in list(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cannot save {what}: dict key {k!r} is not a string")
            out[k] = plain(v, what)
        return out
    raise TypeError(f"cannot save {what}: {type(value).__name__} value {value!r} is not a JSON value")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(path, fmt: str, version: int, state: dict, weights: dict) -> None:
    """Write ``state`` (JSON values) and ``weights`` (a state dict of tensors) into the directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in weights.items()}, buf)
    data = buf.getvalue()
    desc = dict(format=fmt, format_version=version, package_version=_package_version(), **state,
                weights=dict(file=WEIGHTS_NAME, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)))
    text = json.dumps(desc, indent=1, allow_nan=False)
    _atomic_write(path / WEIGHTS_NAME, data)
    _atomic_write(path / JSON_NAME, text.encode("utf-8"))


def _read_json(path: Path, fmt: str, versions) -> dict:
    file = path / JSON_NAME if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(f"no saved model at {str(path)!r} (expected {JSON_NAME})")
    try:
        desc = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(file)!r} is not a valid saved-model description (corrupted JSON: {exc})") from exc
    if not isinstance(desc, dict) or desc.get("format") != fmt:
        found = desc.get("format") if isinstance(desc, dict) else None
        raise ValueError(f"{str(file)!r} is not a saved {fmt.rsplit('.', 1)[-1]} (format {found!r})")
    version = desc.get("format_version")
    if version not in versions:
        raise ValueError(
            f"{str(file)!r} has format version {version!r} (written by ciss_vae "
            f"{desc.get('package_version')!r}); this ciss_vae ({_package_version()}) reads version "
            f"{' or '.join(map(str, versions))}"
        )
    return desc


def load(path, fmt: str, versions) -> tuple[dict, dict]:
    """``(state, weights)`` written by :func:`save` (``path``: the directory or its ``model.json``)."""
    path = Path(path)
    desc = _read_json(path, fmt, versions)
    folder = path if path.is_dir() else path.parent
    try:
        name = desc["weights"]["file"]
        expected = desc["weights"]["sha256"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the saved model at {str(path)!r} is incomplete or corrupted ({exc!r})") from exc
    if Path(name).name != name:
        raise ValueError(f"weights file name {name!r} must be a plain file name")
    wfile = folder / name
    if not wfile.exists():
        raise FileNotFoundError(f"the weights file {str(wfile)!r} is missing")
    data = wfile.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"{str(wfile)!r} is corrupted or does not belong to {JSON_NAME} (SHA-256 mismatch)")
    try:
        weights = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a foreign or damaged file
        raise ValueError(f"{str(wfile)!r} is not a tensors-only weights file: {exc}") from exc
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"{str(wfile)!r} does not hold a dict of tensors")
    state = {k: v for k, v in desc.items() if k not in ("format", "format_version", "package_version", "weights")}
    return state, weights
