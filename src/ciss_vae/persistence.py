"""Saving and loading a fitted :class:`~ciss_vae.imputer.CISSVAEImputer` without pickle.

A saved imputer is a directory holding two files:

``weights.pt``
    The model's ``state_dict`` (a dict of tensors only) written by
    ``torch.save``, read back with ``torch.load(..., weights_only=True)``, which
    refuses anything but tensors and plain containers: loading never runs code.
``model.json``
    Format name and version, package version, the estimator's parameters, the
    column schema (names, kinds, binary and categorical columns, ignored
    columns), the normalisation statistics and observed ranges, the cluster-assignment state, the
    residual stds used for multiple imputation, the model's constructor
    arguments and the SHA-256 of ``weights.pt``.

Both files are written to a temporary file and moved into place with
``os.replace``, so an interrupted save never leaves a partial file under
either name. :func:`load_imputer` raises ``ValueError`` for a file of another
format or version, a weights file whose SHA-256 does not match (corruption),
or a JSON file that cannot be parsed or lacks a field.

Not saved: the training rows, hence ``fit_output_`` and ``training_history_``.
Column labels, cluster labels and parameters must be JSON values (str, int,
float, bool, None, lists and str-keyed dicts of them); others raise
``TypeError`` at save time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

FORMAT = "ciss_vae.CISSVAEImputer"
FORMAT_VERSION = 2
JSON_NAME = "model.json"
WEIGHTS_NAME = "weights.pt"


def _package_version() -> str:
    from ciss_vae import __version__

    return __version__


def _finite_or_none(v) -> float | None:
    """A float for JSON, None for NaN (a column with no observed value has no bound)."""
    v = float(v)
    return v if np.isfinite(v) else None


def _plain(value, what: str):
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
        return [_plain(v, what) for v in list(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cannot save {what}: dict key {k!r} is not a string")
            out[k] = _plain(v, what)
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
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def _clusterer_state(imputer) -> dict:
    c = imputer.clusterer_
    if c is None:
        return dict(type="labels", **imputer.cluster_assigner_.state())
    params = c.get_params()
    return dict(
        type="missingness_clusterer",
        params=_plain(params, "the clusterer's parameters"),
        positional=bool(c._positional),
        n_input_columns=int(c._n_input_columns),
        columns=_plain(c.columns_, "column labels"),
        feature_groups=[[str(k), _plain(v, "column labels")] for k, v in c.feature_groups_.items()],
        patterns=np.asarray(c._Xu, dtype=float).tolist(),
        weights=np.asarray(c._w).astype(int).tolist(),
        pattern_labels=np.asarray(c._lab_u).astype(int).tolist(),
        centers=np.asarray(c.cluster_centers_, dtype=float).tolist(),
        n_clusters=int(c.n_clusters_),
    )


def save_imputer(imputer, path) -> None:
    """Write a fitted imputer into the directory ``path`` (created if needed)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(imputer, "model_")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    s = imputer.schema_
    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in imputer.model_.state_dict().items()}
    torch.save(state, buf)
    weights = buf.getvalue()
    desc = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        package_version=_package_version(),
        params=_plain(imputer.get_params(), "the imputer's parameters"),
        model=dict(constructor=imputer.model_.constructor_kwargs(), final_lr=imputer.model_.final_lr),
        schema=dict(
            names=_plain(list(s.names), "column labels"),
            kind=s.kind,
            model_columns=[int(c) for c in s.model_columns],
            ignored=[bool(v) for v in s.ignored],
            binary=[bool(v) for v in s.binary],
            categorical=[[_plain(g, "categorical group names"), [int(j) for j in idx]]
                         for g, idx in s.categorical.items()],
            dtypes=list(imputer.column_dtypes_),
        ),
        fitted=dict(
            seed=int(imputer.seed_),
            input_kind=imputer._input_kind_,
            n_features_in=int(imputer.n_features_in_),
            feature_names_in=(_plain(list(imputer.feature_names_in_), "column labels")
                              if hasattr(imputer, "feature_names_in_") else None),
            means=[float(v) for v in imputer.means_],
            stds=[float(v) for v in imputer.stds_],
            residual_std=[float(v) for v in imputer.residual_std_],
            observed_min=[_finite_or_none(v) for v in imputer.observed_min_],
            observed_max=[_finite_or_none(v) for v in imputer.observed_max_],
            cluster_names=_plain(list(imputer.cluster_names_), "cluster labels"),
            n_clusters=int(imputer.n_clusters_),
            fit_summary=_plain(getattr(imputer, "fit_summary_", None) or {}, "the fit summary"),
        ),
        clusters=_clusterer_state(imputer),
        weights=dict(file=WEIGHTS_NAME, sha256=hashlib.sha256(weights).hexdigest(), bytes=len(weights)),
    )
    text = json.dumps(desc, indent=1, allow_nan=False)
    _atomic_write(path / WEIGHTS_NAME, weights)
    _atomic_write(path / JSON_NAME, text.encode("utf-8"))


def _read_json(path: Path) -> dict:
    file = path / JSON_NAME if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(f"no saved imputer at {str(path)!r} (expected {JSON_NAME})")
    try:
        desc = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(file)!r} is not a valid saved-imputer description (corrupted JSON: {exc})") from exc
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ValueError(f"{str(file)!r} is not a saved CISSVAEImputer (format {desc.get('format') if isinstance(desc, dict) else None!r})")
    version = desc.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{str(file)!r} has format version {version!r} (written by ciss_vae "
            f"{desc.get('package_version')!r}); this ciss_vae ({_package_version()}) reads version "
            f"{FORMAT_VERSION} only"
        )
    return desc


def load_imputer(path, cls=None):
    """Rebuild an imputer saved by :func:`save_imputer` (``path``: the directory or its ``model.json``)."""
    from ciss_vae.clustering import MissingnessClusterer
    from ciss_vae.imputer import CISSVAEImputer, _LabelAssigner
    from ciss_vae.model import CISSVAE
    from ciss_vae.schema import TableSchema

    cls = cls or CISSVAEImputer
    path = Path(path)
    desc = _read_json(path)
    folder = path if path.is_dir() else path.parent
    try:
        wfile = folder / desc["weights"]["file"]
        if Path(desc["weights"]["file"]).name != desc["weights"]["file"]:
            raise ValueError(f"weights file name {desc['weights']['file']!r} must be a plain file name")
        if not wfile.exists():
            raise FileNotFoundError(f"the weights file {str(wfile)!r} is missing")
        weights = wfile.read_bytes()
        if hashlib.sha256(weights).hexdigest() != desc["weights"]["sha256"]:
            raise ValueError(f"{str(wfile)!r} is corrupted or does not belong to {JSON_NAME} (SHA-256 mismatch)")
        try:
            state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{str(wfile)!r} is not a tensors-only weights file: {exc}") from exc
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{str(wfile)!r} does not hold a dict of tensors")

        imp = cls(**desc["params"])
        m = desc["model"]
        model = CISSVAE(**m["constructor"])
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"the weights do not fit the saved architecture: {exc}") from exc
        if m.get("final_lr") is not None:
            model.set_final_lr(m["final_lr"])
        imp.model_ = model.eval()

        sd = desc["schema"]
        names = list(sd["names"])
        imp.schema_ = TableSchema(
            names=names, index=pd.RangeIndex(0), kind=sd["kind"],
            model_columns=np.asarray(sd["model_columns"], dtype=np.int64),
            ignored=np.asarray(sd["ignored"], dtype=bool), binary=np.asarray(sd["binary"], dtype=bool),
            categorical={g: list(idx) for g, idx in sd["categorical"]},
            original=pd.DataFrame(columns=pd.Index(names, dtype=object) if names else None),
        )
        imp.column_dtypes_ = list(sd["dtypes"])

        f = desc["fitted"]
        imp.seed_ = int(f["seed"])
        imp._input_kind_ = f["input_kind"]
        imp.n_features_in_ = int(f["n_features_in"])
        if f["feature_names_in"] is not None:
            imp.feature_names_in_ = np.asarray(f["feature_names_in"], dtype=object)
        imp.means_ = np.asarray(f["means"], dtype=np.float64)
        imp.stds_ = np.asarray(f["stds"], dtype=np.float64)
        imp.residual_std_ = np.asarray(f["residual_std"], dtype=np.float64)
        imp.observed_min_ = np.asarray(f["observed_min"], dtype=np.float64)  # None -> NaN
        imp.observed_max_ = np.asarray(f["observed_max"], dtype=np.float64)
        imp.cluster_names_ = np.asarray(f["cluster_names"])
        imp.n_clusters_ = int(f["n_clusters"])
        imp.fit_summary_ = f.get("fit_summary", {})

        c = desc["clusters"]
        if c["type"] == "labels":
            imp.clusterer_ = None
            imp.cluster_assigner_ = _LabelAssigner(c["patterns"], c["codes"], c["centers"])
        elif c["type"] == "missingness_clusterer":
            cl = MissingnessClusterer(**c["params"])
            cl._positional = bool(c["positional"])
            cl._n_input_columns = int(c["n_input_columns"])
            cl.columns_ = list(c["columns"])
            cl.feature_groups_ = {k: list(v) for k, v in c["feature_groups"]}
            cl._Xu = np.asarray(c["patterns"], dtype=float).reshape(len(c["weights"]), -1)
            cl._w = np.asarray(c["weights"], dtype=np.int64)
            cl._lab_u = np.asarray(c["pattern_labels"], dtype=np.int64)
            cl.cluster_centers_ = np.asarray(c["centers"], dtype=float)
            cl.n_clusters_ = int(c["n_clusters"])
            cl.labels_ = np.empty(0, dtype=np.int64)  # the training rows are not saved
            imp.clusterer_ = cl
            imp.cluster_assigner_ = cl
        else:
            raise ValueError(f"unknown cluster assignment type {c['type']!r}")
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"the saved imputer at {str(path)!r} is incomplete or corrupted ({exc!r})") from exc
    return imp
