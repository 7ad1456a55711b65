"""CISSVAEImputer: CISS-VAE as a scikit-learn transformer.

``fit`` runs exactly the path of :func:`~ciss_vae.pipeline.run_cissvae`
(:func:`~ciss_vae.pipeline.fit_table`: the same reading, clustering, hold-out,
training and selection) and keeps what is needed to impute new rows: the
column schema, the training normalisation statistics, the cluster assignment
rule and the model. ``transform`` imputes any table with the same columns;
``transform(X, n_draws=m)`` draws ``m`` completed tables for multiple
imputation (pool the analyses with :func:`ciss_vae.pooling.pool`).
:meth:`CISSVAEImputer.save` / :meth:`CISSVAEImputer.load` store and rebuild a
fitted imputer without pickle: the imputer describes itself as plain values
(:meth:`~CISSVAEImputer.to_state`) and :mod:`ciss_vae.persistence` writes them.

Behaviour of ``transform`` on unusual input (documented, tested):

* a row whose missingness pattern was never seen in training gets the cluster
  of the nearest training patterns (clusterer's ``predict``: kNN vote for
  Leiden, nearest centroid for KMeans; with given ``clusters``, the nearest
  centroid of the training rows' missingness indicators);
* an all-missing row is imputed from the model alone (every input is the
  replacement value): each continuous cell gets the model's prediction for
  that cluster, close to the training mean;
* extra, missing or reordered columns raise ``ValueError`` naming them; an
  array with another number of columns raises ``ValueError``;
* a column of another numeric dtype (int, float32, nullable, bool) is read as
  numbers, and the output keeps the input's dtype where it can hold the
  imputed values (as in ``run_cissvae``); a label column (category, text) must
  hold labels seen in fit (``ValueError`` naming the label otherwise); text in
  a column that was numeric in fit raises ``TypeError``; infinite values
  raise ``ValueError``; a binary column with a value other than 0/1 raises
  ``ValueError``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import _check_feature_names_in, check_array, check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data

    _FINITE = "ensure_all_finite"
except ImportError:  # scikit-learn 1.3 - 1.5 (the declared floor is 1.3)
    _FINITE = "force_all_finite"

    def validate_data(estimator, X, *, reset, skip_check_array):
        estimator._check_feature_names(X, reset=reset)
        estimator._check_n_features(X, reset=reset)

from ciss_vae import persistence
from ciss_vae import settings as S
from ciss_vae.assignment import PatternAssigner, assigner_from_state
from ciss_vae.engine import EVAL_ROWS, TrainingData, activate, derived_seed, forward_rows, predict_logits
from ciss_vae.losses import ColumnKinds
from ciss_vae.model import CISSVAE
from ciss_vae.normal import ClusterNormal, NormalBlend
from ciss_vae.output import observed_range, output_values
from ciss_vae.pipeline import RunResult, bootstrap_normals, bootstrap_refits, fit_table
from ciss_vae.schema import TableSchema, encode_column

logger = logging.getLogger(__name__)

FORMAT = "ciss_vae.CISSVAEImputer"
FORMAT_VERSION = 7
_READS = (2, 3, 4, 5, 6, 7)  # 2: before the settings declaration; 2 and 3: no bootstrap refits (improper draws);
# 2 to 4: no normal blend; 5: a blend without noise_scale (its draws add independent residual noise);
# 2 to 6: binary columns are the network's alone (no logistic in the normal, weight 1)
_BOOTSTRAP = "bootstrap."  # weights of refit b are saved as "bootstrap.<b>.<name>"
_NORMAL = "normal."  # the blend's normal as "normal.<means|covariances|logistic>", refit b's as "normal.<b>.<...>"
_PARAMS = S.defaults(S.IMPUTER)


class _NewRows(SimpleNamespace):
    """What :func:`~ciss_vae.output.output_values` needs to know about rows given to ``transform``."""


class _ImputerBase(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    # ``transform`` and ``fit_transform`` wrap their own outputs for ``set_output``
    # (a list of draws is wrapped table by table), so sklearn must not wrap them.

    def transform(self, X, n_draws=None):
        """Impute the missing cells of ``X`` (same columns as in ``fit``).

        Parameters
        ----------
        X : DataFrame, ndarray or Tensor
            New rows. Missing cells are NaN/None.
        n_draws : int, optional
            None: one deterministic imputation (the model's prediction after
            ``transform_max_iter`` passes at most, by default
            ``transform_passes_``, stopping once no cell moves by more than
            ``transform_tol`` standardised units). An int ``m``:
            a list of ``m`` completed tables drawn for multiple imputation:
            draw ``i`` comes from bootstrap refit ``i`` of the model (see
            ``bootstrap_models``; the fitted model itself when there are none),
            around that model's converged imputation (its latent at the mean;
            with ``normal_blend``, blended with the normal refitted to the same
            bootstrap resample): in continuous columns, the deviation that
            normal draws for the row's missing cells given its observed ones
            (without a blend, noise with the residual std of each column
            measured on the validation cells at fit time), Bernoulli draws for
            binary columns (with a blend, of that normal's logistic
            probability) and categorical draws for one-hot and label columns; draw
            ``i`` is seeded by ``(seed, i)``, so it is reproducible and
            independent of the global RNG.

        Returns
        -------
        DataFrame (for a DataFrame), ndarray of float64 (for an array or a
        tensor), or a list of them with ``n_draws``. Observed cells are
        returned exactly as given, index and dtypes kept (a column whose
        dtype cannot hold the imputed values becomes float64).
        """
        check_is_fitted(self, "model_")
        rows = self._read(X)
        if n_draws is None:
            fill = self._converge(rows)
            logits = self._blended(rows, self._logits(rows, fill))[0]
            out = self._table(rows, output_values(rows, logits, self.binary_output, self._value_range()))
            return _wrap_data_with_container("transform", out, X, self)
        if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
            raise ValueError(f"`n_draws` must be a positive integer, got {n_draws!r}")
        draws, converged = [], {}  # a refit's model and converged fill, shared by the draws it serves
        for i in range(int(n_draws)):
            key = i % max(1, len(self.bootstrap_states_))
            if key not in converged:
                model = self._draw_model(i)
                converged[key] = (model, self._converge(rows, model))
            values = self._draw(rows, i, *converged[key], normal=self._draw_normal(i))
            draws.append(_wrap_data_with_container("transform", self._table(rows, values), X, self))
        return draws

    def fit_transform(self, X, y=None, clusters=None):
        """Fit and return the imputed training table: exactly ``run_cissvae(X, <same settings>)``'s table.

        (For an ndarray or tensor, its values as a float64 ndarray.) This is the
        model applied to the fill it was selected on during training, with the
        validation cells hidden; ``fit(X).transform(X)`` instead imputes the
        rows afresh with every observed cell as input, so on rows with
        missing cells the two differ slightly.
        """
        self.fit(X, y, clusters=clusters)
        out = self.fit_output_
        if self._input_kind_ != "frame":
            out = out.to_numpy(dtype=np.float64)
        return _wrap_data_with_container("transform", out, X, self)


class CISSVAEImputer(_ImputerBase):
    __doc__ = f"""Impute missing values with CISS-VAE, as a scikit-learn transformer.

    Parameters are stored as given and checked in :meth:`fit` (every one is
    declared in :mod:`ciss_vae.settings`); each means what the ``run_cissvae``
    argument of the same name means. Cluster labels may be given to
    :meth:`fit` as ``clusters``. Not available here: ``imputable_matrix``,
    ``missingness_proportion_matrix`` and ``scale_features`` (shaped like, or
    only meaningful for, the training table), ``return_*`` and ``debug``.

    Parameters
    ----------
{S.parameters_doc(S.IMPUTER)}

    Attributes
    ----------
    model_ : CISSVAE
        The selected model (on the CPU after fit; ``device`` is used to train).
    schema_ : TableSchema
        Column roles learned in fit.
    means_, stds_ : ndarray
        Training normalisation statistics of the model columns.
    observed_min_, observed_max_ : ndarray
        Range of the observed training values of each model column (the
        bounds of ``clip_to_observed``; NaN for a column with none).
    bootstrap_states_ : list of dict
        Parameters of the ``bootstrap_models`` refits the draws come from
        (empty with ``bootstrap_models=0``).
    residual_std_ : ndarray
        Per model column, residual std (standardised units) of the model on
        the validation cells (continuous columns, of the blended imputations
        when there is a blend; 0 for binary ones); the observation noise of
        ``n_draws`` without a blend (with one, the normal's conditional
        deviations are drawn instead).
    blend_ : NormalBlend or None
        With ``normal_blend``: the multivariate normal (per cluster, or
        clusters differing in their means only) whose conditional means are
        averaged into the imputations of the continuous columns, and the
        network's weight in each column; binary columns are imputed by the
        normal's logistic regression of each on the others
        (:class:`~ciss_vae.normal.NormalBlend`).
    bootstrap_normals_ : list of ClusterNormal
        With a blend: the normal (and its logistic regressions) fitted again
        to each bootstrap refit's rows, blended into that refit's draws (empty
        without a blend).
    clusterer_ : MissingnessClusterer or None
        Fitted when ``clusters`` is not given to fit.
    cluster_assigner_ : object
        ``predict_mask(mask)`` -> cluster code of new rows (the clusterer, or
        :class:`~ciss_vae.assignment.PatternAssigner` for given clusters).
    cluster_names_ : ndarray
        Cluster label of each cluster code.
    fit_output_ : DataFrame
        The imputed training table (``run_cissvae``'s output).
    training_history_ : DataFrame
        The training history (``run_cissvae(return_history=True)``'s).
    fit_summary_ : dict
        Epochs, refit loops, why training stopped, the selected phase and its
        validation error, the seed and the number of clusters.
    transform_passes_ : int
        Imputation passes of ``transform`` when ``transform_max_iter`` is None:
        those behind the selected model's output in training (the median over
        averaged fits, rounded up).
    seed_ : int
        The seed used (drawn when ``seed=None``).
    n_features_in_, feature_names_in_ :
        As in scikit-learn.

    Examples
    --------
    >>> from ciss_vae import CISSVAEImputer
    >>> from ciss_vae.data import load_example_dataset
    >>> df, _, clusters = load_example_dataset()
    >>> imputer = CISSVAEImputer(hidden_dims=[32], layer_order_enc=["u"], layer_order_dec=["s"], epochs=5,
    ...                          max_loops=1).fit(df.iloc[:300], clusters=clusters[:300])
    >>> int(imputer.transform(df.iloc[300:320]).isna().sum().sum())
    0
    """

    def __init__(self, **params):
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise TypeError(f"CISSVAEImputer got unexpected parameter(s) {unknown}")
        for name, default in _PARAMS.items():
            setattr(self, name, params.get(name, default))

    __init__.__signature__ = S.signature(S.IMPUTER, first=("self",))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6 reads these instead of __sklearn_tags__
        return {"allow_nan": True, "non_deterministic": False}

    # ------------------------------------------------------------------ fit
    def run_settings(self) -> dict:
        """Every ``run_cissvae`` setting these parameters stand for, checked (the rest at their defaults)."""
        checked = S.validate(self.get_params(deep=False), S.IMPUTER)
        run = S.defaults(S.RUN)
        run.update({k: v for k, v in checked.items() if k in run})
        return run

    def fit(self, X, y=None, clusters=None):
        """Cluster (unless ``clusters`` is given), train and keep what ``transform`` needs.

        Runs the path of :func:`~ciss_vae.pipeline.run_cissvae` with this
        estimator's settings, so that the imputed training table
        (``fit_output_``) is the one ``run_cissvae`` returns. ``y`` is ignored.
        """
        settings = self.run_settings()
        X = self._check_input(X, reset=True)
        return self._set_fitted(fit_table(X, settings, clusters=clusters))

    def _set_fitted(self, result: RunResult):
        """Keep what ``transform`` needs from a finished run (fit, or a tuning trial's winner)."""
        ds = result.dataset
        self.seed_ = int(result.summary["seed"])
        self.fit_output_ = result.imputed
        self._input_kind_ = "frame" if ds.schema.kind == "frame" else "array"
        self.column_dtypes_ = [str(t) for t in ds.schema.original.dtypes]
        self.schema_ = ds.schema.without_rows()
        self.means_ = np.asarray(ds.means_, dtype=np.float64)
        self.stds_ = np.asarray(ds.stds_, dtype=np.float64)
        self.observed_min_, self.observed_max_ = observed_range(ds)
        self.cluster_names_ = np.asarray(ds.cluster_names)
        self.n_clusters_ = int(ds.n_clusters)
        self.clusterer_ = result.clusterer
        if result.clusterer is None:
            mask = self.schema_.cluster_mask(np.isnan(ds.raw_data.numpy()))
            self.cluster_assigner_ = PatternAssigner.fit(mask, ds.cluster_labels.numpy(), self.n_clusters_)
        else:
            self.cluster_assigner_ = result.clusterer
        if result.fits:  # each draw comes from one fit's refit: the noise is one fit's held-out error
            errors = [_residual_std(f.model, f.dataset, f.fill) for f in result.fits]
            self.residual_std_ = np.sqrt(np.mean(np.square(errors), axis=0))
        else:
            self.residual_std_ = _residual_std(result.model, ds, result.fill)
        self.blend_ = result.blend
        if result.blend is not None:
            measured = ~np.isnan(result.blend.residual_std)
            self.residual_std_ = np.where(measured, result.blend.residual_std, self.residual_std_)
        refits = bootstrap_refits(result, self.run_settings(), self.bootstrap_models) if self.bootstrap_models else []
        self.bootstrap_states_ = [{k: v.cpu() for k, v in state.items()} for state in refits]
        self.bootstrap_normals_ = bootstrap_normals(result, len(refits)) if result.blend is not None else []
        self.model_ = result.model.cpu().eval()
        self.training_history_ = result.history
        self.fit_summary_ = result.summary
        return self

    @property
    def transform_passes_(self) -> int:
        """Imputation passes of ``transform`` when ``transform_max_iter`` is None (from ``fit_summary_``)."""
        return int(self.fit_summary_.get("imputation_passes", 1))

    def _check_input(self, X, reset):
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype="numeric", ensure_min_samples=1, **{_FINITE: "allow-nan"})
        validate_data(self, X, reset=reset, skip_check_array=True)
        return X

    # ------------------------------------------------------------------ transform internals
    def _read(self, X) -> _NewRows:
        """Validate new rows against the fitted schema; standardise with the training statistics."""
        s = self.schema_
        if isinstance(X, pd.DataFrame):
            names = list(X.columns)
            if s.kind == "frame" and names != list(s.names):
                extra = [c for c in names if c not in s.names]
                missing = [c for c in s.names if c not in names]
                if extra or missing:
                    raise ValueError(f"X's columns differ from those seen in fit: extra {extra!r}, missing {missing!r}")
                raise ValueError("X has the columns seen in fit but in another order; reorder them "
                                 f"as {list(s.names)!r}")
        X = self._check_input(X, reset=False)
        if X.shape[0] == 0:
            raise ValueError("X has no rows")
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        new, values = _schema_for_new_rows(frame, s)
        missing = np.isnan(values)
        norm = (values - self.means_) / self.stds_
        fill = np.where(missing, float(self.replacement_value), norm)
        clusters = self.cluster_assigner_.predict_mask(s.cluster_mask(missing))
        fill_cells = missing & ~s.ignored[None, :]
        return _NewRows(schema=new, raw_data=torch.tensor(values), means_=self.means_, stds_=self.stds_,
                        missing=missing, fill_mask=fill_cells, fill=torch.tensor(fill, dtype=torch.float32),
                        clusters=torch.as_tensor(clusters, dtype=torch.int64),
                        input_kind="frame" if isinstance(X, pd.DataFrame) else "array")

    def _kinds(self):
        return ColumnKinds.from_schema(self.schema_)

    @torch.no_grad()
    def _logits(self, rows, fill):
        self.model_.eval()
        return forward_rows(self.model_, fill, rows.clusters)

    def _blended(self, rows, logits, normal=None, generator=None):
        """``logits`` with the blend of fit applied (``normal`` in place of its own), if there is one.

        With ``generator`` (and a blend that scales its normal's deviations),
        also a draw of the deviations around it (:meth:`NormalBlend.draw`); else None.
        """
        if self.blend_ is None:
            return logits, None
        Z = torch.as_tensor((rows.raw_data.numpy() - self.means_) / self.stds_)
        blend = self.blend_ if normal is None else dataclasses.replace(self.blend_, normal=normal)
        return blend.draw(logits, Z, rows.clusters, generator)

    @torch.no_grad()
    def _converge(self, rows, model=None):
        """Iterate fill <- model(fill) on the missing cells (at most ``transform_max_iter`` passes).

        By default as many passes as ``transform_passes_``.

        Each row stops on its own once none of its cells moves by more than
        ``transform_tol``, so a row's imputation does not depend on the other
        rows of the call. ``model`` defaults to the fitted model.
        """
        model = self.model_.eval() if model is None else model
        passes = self.transform_passes_ if self.transform_max_iter is None else int(self.transform_max_iter)
        kinds = self._kinds()
        missing = torch.as_tensor(rows.missing)
        out = rows.fill.clone()
        for start in range(0, out.shape[0], EVAL_ROWS):  # rows converge on their own: chunks bound the memory
            part = slice(start, start + EVAL_ROWS)
            mask, fill, clusters = missing[part], out[part], rows.clusters[part]
            active = mask.any(dim=1)
            for _ in range(passes):
                idx = torch.nonzero(active).squeeze(1)
                if idx.numel() == 0:
                    break
                sub = fill[idx]
                new = torch.where(mask[idx], activate(model(sub, clusters[idx], deterministic=True)[0], kinds), sub)
                fill.index_copy_(0, idx, new)
                moved = (new - sub).abs().amax(dim=1) > self.transform_tol
                active = torch.zeros_like(active).index_fill(0, idx[moved], True)
        return out

    @torch.no_grad()
    def _draw(self, rows, i, model, fill, normal=None) -> np.ndarray:
        """One multiple-imputation draw in original units (model columns).

        The conditional mean comes from draw ``i``'s ``model`` applied to its
        converged imputation ``fill`` (latent at its mean), blended with draw
        ``i``'s ``normal`` when there is a blend; around it, one draw per missing cell:
        in continuous columns, with a blend, the deviation that normal draws
        for the row's missing cells given its observed ones (correlated
        within the row, wider for a row that misses more; scaled per column
        by ``blend_.noise_scale``), else Gaussian noise with the column's
        residual std; a Bernoulli label (with a blend, of the probability
        that normal's logistic regression gives); a categorical label. The
        latent is not sampled, and drawn values are not fed back through the
        encoder: on rows unlike the training rows its variance is unreliable,
        and feeding draws back compounds it.
        """
        s = self.schema_
        gen = torch.Generator().manual_seed(derived_seed(self.seed_, 7919, i))
        z, noise = self._blended(rows, forward_rows(model, fill, rows.clusters), normal, gen)
        z = z.double()
        if noise is None:
            noise = torch.randn(z.shape, generator=gen, dtype=torch.float64) * torch.as_tensor(self.residual_std_)
        z = torch.where(torch.as_tensor(s.continuous), z + noise, z)
        for idx in s.categorical.values():  # Gumbel-max: the argmax taken in output_values is a softmax draw
            g = torch.as_tensor(idx)
            u = torch.rand((z.shape[0], len(idx)), generator=gen, dtype=torch.float64).clamp_min(1e-300)
            z[:, g] = z[:, g] - torch.log(-torch.log(u))
        values = output_values(rows, z, "probability", self._value_range())
        standalone = s.binary & ~s.dummy
        u = torch.rand(z.shape, generator=gen, dtype=torch.float64)
        values[:, standalone] = (u < torch.sigmoid(z)).double().numpy()[:, standalone]
        return values

    def _draw_model(self, i):
        """The model of draw ``i``: bootstrap refit ``i`` (in turn when there are fewer), or the fitted model."""
        if not self.bootstrap_states_:
            return self.model_.eval()
        model = copy.deepcopy(self.model_)
        model.load_state_dict(self.bootstrap_states_[i % len(self.bootstrap_states_)])
        return model.eval()

    def _draw_normal(self, i):
        """The normal of draw ``i`` (fitted to bootstrap resample ``i``), or None: the blend's own."""
        if not self.bootstrap_normals_:
            return None
        return self.bootstrap_normals_[i % len(self.bootstrap_normals_)]

    def _value_range(self):
        """The training data's observed range per model column when ``clip_to_observed``, else None."""
        return (self.observed_min_, self.observed_max_) if self.clip_to_observed else None

    def _table(self, rows, values):
        out = rows.schema.to_frame(values, rows.fill_mask, self.integer_output)
        if rows.input_kind != "frame":
            return out.to_numpy(dtype=np.float64)
        return out

    def get_feature_names_out(self, input_features=None):
        """The input feature names (an imputer keeps its columns)."""
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    # ------------------------------------------------------------------ state and persistence
    def to_state(self) -> dict:
        """The fitted imputer as plain values (JSON-ready); the weights are ``model_.state_dict()``.

        Not kept: the training rows, hence ``fit_output_`` and ``training_history_``.
        """
        check_is_fitted(self, "model_")
        s = self.schema_
        plain = persistence.plain
        return dict(
            params=plain(self.get_params(deep=False), "the imputer's parameters"),
            model=dict(constructor=self.model_.constructor_kwargs(), final_lr=self.model_.final_lr),
            schema=dict(names=plain(list(s.names), "column labels"), kind=s.kind,
                        model_columns=[int(c) for c in s.model_columns], ignored=[bool(v) for v in s.ignored],
                        binary=[bool(v) for v in s.binary],
                        categorical=[[plain(g, "categorical group names"), [int(j) for j in idx]]
                                     for g, idx in s.categorical.items()],
                        labels=[[int(c), plain(list(v), "labels")] for c, v in s.labels.items()],
                        dtypes=list(self.column_dtypes_)),
            fitted=dict(seed=int(self.seed_), input_kind=self._input_kind_, n_features_in=int(self.n_features_in_),
                        feature_names_in=(plain(list(self.feature_names_in_), "column labels")
                                          if hasattr(self, "feature_names_in_") else None),
                        means=[float(v) for v in self.means_], stds=[float(v) for v in self.stds_],
                        residual_std=[float(v) for v in self.residual_std_],
                        observed_min=[persistence.finite_or_none(v) for v in self.observed_min_],
                        observed_max=[persistence.finite_or_none(v) for v in self.observed_max_],
                        cluster_names=plain(list(self.cluster_names_), "cluster labels"),
                        n_clusters=int(self.n_clusters_), bootstrap_models=len(self.bootstrap_states_),
                        blend=None if self.blend_ is None else dict(
                            weights=[float(v) for v in self.blend_.weights],
                            residual_std=[persistence.finite_or_none(v) for v in self.blend_.residual_std],
                            noise_scale=None if self.blend_.noise_scale is None
                            else [float(v) for v in self.blend_.noise_scale]),
                        fit_summary=plain(getattr(self, "fit_summary_", None) or {}, "the fit summary")),
            clusters=self.cluster_assigner_.to_state(),
        )

    @classmethod
    def from_state(cls, state: dict, weights: dict) -> "CISSVAEImputer":
        """The imputer :meth:`to_state` described, with the model weights ``weights``."""
        params = {k: v for k, v in state["params"].items() if k in _PARAMS}  # version 2 had scale_features
        imp = cls(**params)
        m = state["model"]
        model = CISSVAE(**m["constructor"])
        prefixes = [f"{_BOOTSTRAP}{b}." for b in range(int(state["fitted"].get("bootstrap_models", 0)))]
        boot = [{k[len(p):]: v for k, v in weights.items() if k.startswith(p)} for p in prefixes]
        normals = {k[len(_NORMAL):]: v for k, v in weights.items() if k.startswith(_NORMAL)}
        weights = {k: v for k, v in weights.items() if not k.startswith((_BOOTSTRAP, _NORMAL))}
        try:
            for refit in boot:  # each refit must fit the architecture too
                model.load_state_dict(refit, strict=True)
            model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"the weights do not fit the saved architecture: {exc}") from exc
        if m.get("final_lr") is not None:
            model.set_final_lr(m["final_lr"])
        imp.model_ = model.eval()
        imp.bootstrap_states_ = boot
        sd = state["schema"]
        names = list(sd["names"])
        imp.schema_ = TableSchema(
            names=names, index=pd.RangeIndex(0), kind=sd["kind"],
            model_columns=np.asarray(sd["model_columns"], dtype=np.int64),
            ignored=np.asarray(sd["ignored"], dtype=bool), binary=np.asarray(sd["binary"], dtype=bool),
            categorical={g: list(idx) for g, idx in sd["categorical"]},
            original=pd.DataFrame(columns=pd.Index(names, dtype=object) if names else None),
            labels={int(c): list(v) for c, v in sd.get("labels", [])})
        imp.column_dtypes_ = list(sd["dtypes"])
        f = state["fitted"]
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
        imp.blend_, imp.bootstrap_normals_ = None, []
        if f.get("blend") is not None:
            normal = lambda p: ClusterNormal(normals[p + "means"], normals[p + "covariances"],  # noqa: E731
                                             normals.get(p + "logistic"))
            scale = f["blend"].get("noise_scale")
            imp.blend_ = NormalBlend(normal(""), torch.tensor(f["blend"]["weights"], dtype=torch.float64),
                                     np.asarray(f["blend"]["residual_std"], dtype=np.float64),
                                     None if scale is None else np.asarray(scale, dtype=np.float64))
            imp.bootstrap_normals_ = [normal(f"{b}.") for b in range(len(boot))]
        imp.cluster_assigner_ = assigner_from_state(state["clusters"])
        imp.clusterer_ = imp.cluster_assigner_ if state["clusters"]["type"] != "labels" else None
        return imp

    def save(self, path) -> None:
        """Write ``model.json`` and ``weights.pt`` into the directory ``path`` (no pickle)."""
        state = self.to_state()
        weights = dict(self.model_.state_dict())
        for b, refit in enumerate(self.bootstrap_states_):
            weights.update({f"{_BOOTSTRAP}{b}.{k}": v for k, v in refit.items()})
        if self.blend_ is not None:
            weights.update({f"{_NORMAL}{k}": v for k, v in self.blend_.normal.state().items()})
        for b, normal in enumerate(self.bootstrap_normals_):
            weights.update({f"{_NORMAL}{b}.{k}": v for k, v in normal.state().items()})
        persistence.save(path, FORMAT, FORMAT_VERSION, state, weights)

    @classmethod
    def load(cls, path) -> "CISSVAEImputer":
        """Rebuild an imputer written by :meth:`save`; never executes code from the files."""
        state, weights = persistence.load(path, FORMAT, _READS)
        try:
            return cls.from_state(state, weights)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"the saved imputer at {str(path)!r} is incomplete or corrupted ({exc!r})") from exc


def _residual_std(model, dataset, fill) -> np.ndarray:
    """Per-column residual std (standardised units) on the validation cells; observed cells when none."""
    td = TrainingData.from_dataset(dataset, torch.device("cpu"))
    logits = predict_logits(model.cpu(), td, fill).numpy().astype(np.float64)
    target = (dataset.raw_data.numpy().astype(np.float64) - dataset.means_) / dataset.stds_
    val = dataset.val_mask.numpy()
    seen = dataset.masks.numpy()
    out = np.zeros(dataset.n_features)
    for j in np.flatnonzero(dataset.schema.continuous):
        cells = val[:, j] if val[:, j].sum() >= 2 else seen[:, j]
        if cells.any():
            out[j] = float(np.sqrt(np.mean((logits[cells, j] - target[cells, j]) ** 2)))
    return out


def _schema_for_new_rows(frame: pd.DataFrame, fitted: TableSchema):
    """Schema and model values of new rows, read with the column roles learned in fit.

    Unlike fit, a column may be entirely missing here (its cells are imputed);
    a label column must hold only labels seen in fit.
    """
    values = np.full((len(frame), fitted.n_features), np.nan)
    for c in dict.fromkeys(int(c) for c in fitted.model_columns):
        idx = np.flatnonzero(fitted.model_columns == c)
        try:
            v = encode_column(frame.iloc[:, c], fitted.names[c], fitted.labels.get(c))
        except TypeError:
            if fitted.ignored[idx].all():
                continue
            raise
        if np.isinf(v).any():
            raise ValueError(f"column {fitted.names[c]!r} holds an infinite value; use NaN for missing")
        values[:, idx] = v
    new = TableSchema(names=list(frame.columns), index=frame.index, kind=fitted.kind,
                      model_columns=fitted.model_columns.copy(), ignored=fitted.ignored.copy(),
                      binary=fitted.binary.copy(), categorical=dict(fitted.categorical), original=frame,
                      labels=dict(fitted.labels))
    new._check_binary(values)
    return new, values
