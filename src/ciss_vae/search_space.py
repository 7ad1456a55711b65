"""SearchSpace: what :func:`~ciss_vae.tuning.autotune` may vary, and shared-layer placements.

Convention, for every parameter:

* ``(min, max)`` or ``(min, max, step)`` (a tuple) is a range. All-int bounds give
  an integer range (``step`` honoured, default 1); otherwise a float range, on a
  log scale when there is no step and ``min > 0``, uniform with the step when
  one is given.
* ``[a, b, c]`` (a list) is a choice among those values.
* Anything else (int, float, bool, str, None) is fixed and is not an Optuna
  parameter; a fixed placement string such as ``"at_start"`` is used as is.

``save``/``load`` keep that meaning: ranges are written as ``{"range": [...]}``.
Also here: how a trial samples the space (:func:`sample_params`, the per-trial
seeded TPE sampler) and where shared layers go (:func:`shared_positions`).
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import threading
from numbers import Integral, Real

import numpy as np
import optuna

PLACEMENTS = ("at_end", "at_start", "alternating", "random")
_FORMAT = "ciss_vae.SearchSpace/1"

# Parameters whose values must be integers (ranges over them are integer ranges).
# Sampled after num_hidden_layers and the hidden sizes, in this order.
SAMPLED = ("latent_dim", "latent_shared", "output_shared", "lr", "decay_factor", "weight_decay", "beta", "num_epochs",
           "batch_size", "num_shared_encode", "num_shared_decode", "encoder_shared_placement",
           "decoder_shared_placement", "refit_patience", "refit_loops", "epochs_per_loop", "reset_lr_refit")
_INT_PARAMS = {"num_hidden_layers", "hidden_dims", "latent_dim", "num_epochs", "batch_size", "num_shared_encode",
               "num_shared_decode", "refit_patience", "refit_loops", "epochs_per_loop"}
_BOOL_PARAMS = {"latent_shared", "output_shared", "reset_lr_refit"}
_PLACEMENT_PARAMS = {"encoder_shared_placement", "decoder_shared_placement"}


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _check(name: str, spec):
    """``spec`` in canonical form (tuple range, list choice or scalar), or ValueError."""
    if isinstance(spec, np.generic):
        spec = spec.item()
    if isinstance(spec, tuple):
        if name in _BOOL_PARAMS | _PLACEMENT_PARAMS:
            raise ValueError(f"`{name}` cannot be a range; give a list of choices or one value")
        if len(spec) not in (2, 3) or not all(isinstance(v, Real) and not isinstance(v, bool) for v in spec):
            raise ValueError(f"`{name}`: a range is (min, max) or (min, max, step) of numbers, got {spec!r}")
        spec = tuple(v.item() if isinstance(v, np.generic) else v for v in spec)
        if name in _INT_PARAMS and not all(_is_int(v) for v in spec):
            raise ValueError(f"`{name}` takes integers: give an integer range such as (1, 4) or (1, 9, 2), "
                             f"got {spec!r}")
        if not all(math.isfinite(v) for v in spec) or spec[0] > spec[1]:
            raise ValueError(f"`{name}`: a range needs finite min <= max, got {spec!r}")
        if len(spec) == 3 and spec[2] <= 0:
            raise ValueError(f"`{name}`: the step of a range must be positive, got {spec!r}")
        return spec
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"`{name}`: a list of choices cannot be empty")
        values = [v.item() if isinstance(v, np.generic) else v for v in spec]
        for v in values:
            _check_value(name, v)
        return values
    _check_value(name, spec)
    return spec


def _check_value(name: str, v):
    if name in _PLACEMENT_PARAMS and v not in PLACEMENTS:
        raise ValueError(f"`{name}` must be one of {list(PLACEMENTS)} (or a list of them), got {v!r}")
    if name in _BOOL_PARAMS and not isinstance(v, bool):
        raise ValueError(f"`{name}` takes True/False (or a list of them), got {v!r}")
    if name in _INT_PARAMS and not _is_int(v):
        raise ValueError(f"`{name}` takes integers, got {v!r}")
    if name not in _PLACEMENT_PARAMS | _BOOL_PARAMS and not (isinstance(v, Real) and not isinstance(v, bool)):
        raise ValueError(f"`{name}` takes numbers, got {v!r}")


class SearchSpace:
    """The hyperparameters :func:`~ciss_vae.tuning.autotune` searches over.

    Every argument is a range ``(min, max)`` / ``(min, max, step)``, a list of
    choices, or a fixed value (see the module docstring). The defaults are the
    published ones; ``num_epochs=1000``, ``refit_loops=100`` and
    ``epochs_per_loop=1000`` make each trial long, so lower them first.

    Examples
    --------
    >>> s = SearchSpace(num_hidden_layers=(1, 3), hidden_dims=(16, 64, 16), lr=(1e-3, 1e-2),
    ...                 encoder_shared_placement="at_start", num_epochs=5)
    >>> s.kind("hidden_dims"), s.kind("latent_dim"), s.kind("encoder_shared_placement")
    ('range', 'choice', 'fixed')
    """

    def __init__(self, num_hidden_layers=(1, 4), hidden_dims=[64, 512], latent_dim=[10, 100],  # noqa: B006
                 latent_shared=[True, False], output_shared=[True, False], lr=(1e-4, 1e-3),  # noqa: B006
                 decay_factor=(0.9, 0.999), weight_decay=0.001, beta=0.01, num_epochs=1000, batch_size=64,
                 num_shared_encode=[0, 1, 3], num_shared_decode=[0, 1, 3],  # noqa: B006
                 encoder_shared_placement=list(PLACEMENTS), decoder_shared_placement=list(PLACEMENTS),
                 refit_patience=2, refit_loops=100, epochs_per_loop=1000, reset_lr_refit=[True, False]):  # noqa: B006
        values = dict(locals())
        for name in PARAMETERS:
            setattr(self, name, _check(name, values[name]))

    # ------------------------------------------------------------------ reading
    def kind(self, name: str) -> str:
        """"range", "choice" or "fixed"."""
        spec = getattr(self, name)
        return "range" if isinstance(spec, tuple) else "choice" if isinstance(spec, list) else "fixed"

    def suggest(self, trial, name: str, optuna_name: str | None = None):
        """The value of ``name`` for this trial (Optuna records it as ``optuna_name``; fixed ones are not recorded)."""
        spec = getattr(self, name)
        key = optuna_name or name
        if isinstance(spec, list):
            return trial.suggest_categorical(key, spec)
        if isinstance(spec, tuple):
            low, high = spec[0], spec[1]
            step = spec[2] if len(spec) == 3 else None
            if all(_is_int(v) for v in spec):
                return trial.suggest_int(key, low, high, step=step or 1)
            if step is not None:
                return trial.suggest_float(key, float(low), float(high), step=float(step))
            return trial.suggest_float(key, float(low), float(high), log=low > 0)
        return spec

    def values(self, name: str) -> list:
        """Every value ``name`` may take (a range listed at its step), for checks and docs."""
        spec = getattr(self, name)
        if isinstance(spec, list):
            return list(spec)
        if isinstance(spec, tuple) and all(_is_int(v) for v in spec):
            return list(range(spec[0], spec[1] + 1, spec[2] if len(spec) == 3 else 1))
        if isinstance(spec, tuple):
            return [spec[0], spec[1]]
        return [spec]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """JSON-ready: ranges as ``{"range": [...]}``, choices as lists, fixed values as is."""
        return {name: {"range": list(spec)} if isinstance(spec, tuple) else spec
                for name in PARAMETERS for spec in [getattr(self, name)]}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        unknown = set(d) - set(PARAMETERS) - {"format"}
        if unknown:
            raise ValueError(f"unknown SearchSpace parameters: {sorted(unknown)}")
        kw = {k: tuple(v["range"]) if isinstance(v, dict) else v for k, v in d.items() if k != "format"}
        return cls(**kw)

    def save(self, path) -> None:
        """Write the search space as JSON; :meth:`load` reads it back with the same meaning."""
        with open(path, "w") as f:
            json.dump({"format": _FORMAT, **self.to_dict()}, f, indent=2)

    @classmethod
    def load(cls, path) -> "SearchSpace":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def fingerprint(self) -> str:
        """A hash of the search space's meaning."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in PARAMETERS)
        return f"SearchSpace({args})"

    def __str__(self) -> str:
        lines = ["SearchSpace:"]
        for n in PARAMETERS:
            lines.append(f"  {n:<26} {getattr(self, n)!r}  ({self.kind(n)})")
        return "\n".join(lines)


# The parameters and their (published) defaults, read off the signature. Those that
# stand for a run_cissvae setting are declared in ciss_vae.settings (face "SearchSpace").
DEFAULTS = {k: p.default for k, p in inspect.signature(SearchSpace.__init__).parameters.items() if k != "self"}
PARAMETERS = tuple(DEFAULTS)


def sample_params(space: SearchSpace, trial, constant_layer_size: bool = False) -> dict:
    """One trial's values of every search-space parameter (Optuna names as in the published autotune)."""
    L = space.suggest(trial, "num_hidden_layers")
    if constant_layer_size:
        dims = [space.suggest(trial, "hidden_dims", "hidden_dim_constant")] * L
    else:
        dims = [space.suggest(trial, "hidden_dims", f"hidden_dim_{i}") for i in range(L)]
    return dict(num_hidden_layers=L, hidden_dims=dims, **{n: space.suggest(trial, n) for n in SAMPLED})


def trial_seed_for(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a search seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """TPE whose random state is seeded from (seed, trial number) at every trial.

    One worker gets the same sequence as ever for the same seed; workers sharing
    a study get different draws (trial numbers are unique), not copies.
    """

    def __init__(self, seed: int, **tpe_kwargs):
        self._seed, self._kw, self._per_trial, self._lock = seed, tpe_kwargs, {}, threading.Lock()

    def _for(self, trial):
        with self._lock:
            s = self._per_trial.get(trial.number)
            if s is None:
                s = self._per_trial[trial.number] = optuna.samplers.TPESampler(
                    seed=trial_seed_for(self._seed, trial.number), **self._kw)
            return s

    def before_trial(self, study, trial):
        self._for(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        s = self._for(trial)
        with self._lock:
            self._per_trial.pop(trial.number, None)
        s.after_trial(study, trial, state, values)


# ---------------------------------------------------------------------- layer orders
def shared_positions(n_layers: int, n_shared: int, placement: str, rng=None) -> list[int]:
    """Positions (0 = first layer in that stack's own order) of the shared layers.

    ``at_start``: the first ``n``; ``at_end``: the last ``n``; ``alternating``:
    shared and unshared layers alternate from the first layer on (S,U,S,U,...)
    until the rarer kind runs out; ``random``: ``n`` positions drawn with ``rng``.
    """
    n = max(0, min(int(n_shared), int(n_layers)))
    if placement == "at_start":
        return list(range(n))
    if placement == "at_end":
        return list(range(n_layers - n, n_layers))
    if placement == "alternating":
        pairs = min(n, n_layers - n)
        pattern = [i % 2 == 0 for i in range(2 * pairs)] + [n > pairs] * (n_layers - 2 * pairs)
        return [i for i, s in enumerate(pattern) if s]
    if placement == "random":
        rng = rng if rng is not None else np.random.default_rng()
        return sorted(int(i) for i in rng.choice(n_layers, size=n, replace=False))
    raise ValueError(f"unknown placement {placement!r}; use one of {list(PLACEMENTS)}")


def layer_order(n_layers: int, positions) -> list[str]:
    """``["shared"/"unshared", ...]`` with the shared layers at ``positions``."""
    pos = set(positions)
    return ["shared" if i in pos else "unshared" for i in range(n_layers)]


def all_layer_orders(n_layers: int, n_enc: int, n_dec: int, cap: int, rng) -> list[tuple[list[str], list[str]]]:
    """Every (encoder, decoder) order with these shared counts; a seeded sample of ``cap`` when there are more."""
    enc = list(itertools.combinations(range(n_layers), n_enc))
    dec = list(itertools.combinations(range(n_layers), n_dec))
    total = len(enc) * len(dec)
    picks = range(total) if total <= cap else sorted(int(i) for i in rng.choice(total, size=cap, replace=False))
    return [(layer_order(n_layers, enc[i // len(dec)]), layer_order(n_layers, dec[i % len(dec)])) for i in picks]


def order_string(order) -> str:
    """"S,U,U" for ["shared", "unshared", "unshared"]."""
    return ",".join("S" if w == "shared" else "U" for w in order)
