"""CISSVAEImputer: CISS-VAE as a scikit-learn transformer.

``fit`` runs exactly the path of :func:`~ciss_vae.pipeline.run_cissvae` (the
same clustering, hold-out, training and selection) and keeps what is needed to
impute new rows: the column schema, the training normalisation statistics, the
cluster assignment rule and the model. ``transform`` imputes any table with
the same columns; ``transform(X, n_draws=m)`` draws ``m`` completed tables for
multiple imputation (pool the analyses with :func:`ciss_vae.pooling.pool`).
:meth:`CISSVAEImputer.save` / :meth:`CISSVAEImputer.load` store and rebuild a
fitted imputer without pickle (see :mod:`ciss_vae.persistence`).

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
  imputed values (as in ``run_cissvae``); a non-numeric column raises
  ``TypeError``; infinite values raise ``ValueError``; a binary column with a
  value other than 0/1 raises ``ValueError``.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._set_output import _wrap_data_with_container
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from ciss_vae.clustering import MissingnessClusterer
from ciss_vae.engine import TrainingData, activate, predict_logits
from ciss_vae.losses import ColumnKinds
from ciss_vae.output import observed_range, output_values
from ciss_vae.pipeline import ignored_for_clustering, report_to_stderr, resolve_seed, run_cissvae
from ciss_vae.schema import TableSchema, _to_frame

logger = logging.getLogger(__name__)

# run_cissvae arguments that are not constructor parameters: data-shaped ones
# (imputable_matrix, missingness_proportion_matrix, clusters -> fit), output
# switches (return_*, print_dataset -> verbose) and `debug`.
_RUN_ARGS = (
    "val_proportion", "replacement_value", "columns_ignore", "binary_feature_mask", "categorical_column_map",
    "n_clusters", "k_neighbors", "leiden_resolution", "leiden_objective", "seed", "scale_features",
    "hidden_dims", "latent_dim", "layer_order_enc", "layer_order_dec", "latent_shared", "output_shared",
    "batch_size", "epochs", "initial_lr", "decay_factor", "weight_decay", "beta", "device", "max_loops",
    "patience", "epochs_per_loop", "initial_lr_refit", "decay_factor_refit", "beta_refit", "binary_output",
    "clip_to_observed",
    "validate_every", "tol", "n_iter_no_change", "precision", "val_seed",
)


class _NewRows(SimpleNamespace):
    """What :func:`~ciss_vae.output.output_values` needs to know about rows given to ``transform``."""


class _LabelAssigner:
    """Cluster of a row from its missingness pattern, for clusters given to ``fit``.

    Patterns seen in training get the majority cluster of their training rows;
    new patterns get the cluster whose centroid (mean missingness indicator of
    its training rows) is nearest in squared Euclidean distance.
    """

    def __init__(self, patterns, codes, centers):
        self.patterns = np.asarray(patterns, dtype=bool).reshape(len(codes), -1)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.centers = np.asarray(centers, dtype=float)
        self._lookup = {p.tobytes(): c for p, c in zip(np.packbits(self.patterns, axis=1), self.codes)}

    @classmethod
    def fit(cls, mask: np.ndarray, codes: np.ndarray, n_clusters: int) -> "_LabelAssigner":
        pats, inverse = np.unique(mask, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        votes = np.zeros((len(pats), n_clusters))
        np.add.at(votes, (inverse, codes), 1)
        centers = np.vstack([mask[codes == c].mean(axis=0) for c in range(n_clusters)])
        return cls(pats, votes.argmax(axis=1), centers)

    def predict(self, mask: np.ndarray) -> np.ndarray:
        packed = np.packbits(mask, axis=1)
        out = np.array([self._lookup.get(p.tobytes(), -1) for p in packed], dtype=np.int64)
        new = out < 0
        if new.any():
            d = ((mask[new][:, None, :].astype(float) - self.centers[None]) ** 2).sum(axis=2)
            out[new] = d.argmin(axis=1)
        return out

    def state(self) -> dict:
        return dict(patterns=self.patterns.astype(int).tolist(), codes=self.codes.tolist(),
                    centers=self.centers.tolist())


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
            ``transform_max_iter`` passes at most, stopping once no cell moves
            by more than ``transform_tol`` standardised units). An int ``m``:
            a list of ``m`` completed tables drawn from the model for multiple
            imputation (latent sample, observation noise with the residual std
            of each continuous column measured on the validation cells at fit
            time, Bernoulli draws for binary and categorical draws for one-hot
            columns); draw ``i`` is seeded by ``(seed, i)``, so it is
            reproducible and independent of the global RNG.

        Returns
        -------
        DataFrame (for a DataFrame), ndarray of float64 (for an array or a
        tensor), or a list of them with ``n_draws``. Observed cells are
        returned exactly as given, index and dtypes kept (a column whose
        dtype cannot hold the imputed values becomes float64).
        """
        check_is_fitted(self, "model_")
        rows = self._read(X)
        fill = self._converge(rows)
        if n_draws is None:
            logits = self._logits(rows, fill)
            out = self._table(rows, output_values(rows, logits, self.binary_output, self._value_range()))
            return _wrap_data_with_container("transform", out, X, self)
        if isinstance(n_draws, bool) or not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
            raise ValueError(f"`n_draws` must be a positive integer, got {n_draws!r}")
        draws = []
        for i in range(int(n_draws)):
            values = self._draw(rows, fill, i)
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
    """Impute missing values with CISS-VAE, as a scikit-learn transformer.

    Every parameter is the ``run_cissvae`` argument of the same name and
    default (see :func:`~ciss_vae.pipeline.run_cissvae`), except:

    verbose : bool, default=False
        Log the dataset, clustering and training summary (run_cissvae's
        ``print_dataset``).
    transform_max_iter : int, default=10
        Most imputation passes in ``transform`` (fill <- model(fill), as the
        refit loop does); the first pass starts from ``replacement_value``.
    transform_tol : float, default=1e-4
        ``transform`` stops once no imputed cell changes by more than this,
        in standardised units.

    Not available here: ``imputable_matrix`` and
    ``missingness_proportion_matrix`` (they are shaped like the training data),
    ``return_*``, ``print_dataset`` and ``debug``. Cluster labels may be given
    to :meth:`fit` as ``clusters``.

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
    residual_std_ : ndarray
        Per model column, residual std (standardised units) of the model on
        the validation cells (continuous columns; 0 for binary ones); the
        observation noise of ``n_draws``.
    clusterer_ : MissingnessClusterer or None
        Fitted when ``clusters`` is not given to fit.
    cluster_assigner_ : object
        ``predict(X)`` -> cluster code of new rows (the clusterer, or a
        nearest-centroid rule on the training rows' missingness patterns).
    cluster_names_ : ndarray
        Cluster label of each cluster code.
    fit_output_ : DataFrame
        The imputed training table (``run_cissvae``'s output).
    seed_ : int
        The seed used (drawn when ``seed=None``).
    n_features_in_, feature_names_in_ :
        As in scikit-learn.
    """

    def __init__(
        self,
        *,
        val_proportion=0.1,
        replacement_value=0.0,
        columns_ignore=None,
        binary_feature_mask=None,
        categorical_column_map=None,
        n_clusters=None,
        k_neighbors=None,
        leiden_resolution=None,
        leiden_objective=None,
        seed=42,
        scale_features=False,
        hidden_dims=(150, 120, 60),
        latent_dim=15,
        layer_order_enc=("unshared", "unshared", "unshared"),
        layer_order_dec=("shared", "shared", "shared"),
        latent_shared=False,
        output_shared=False,
        batch_size=4000,
        epochs=500,
        initial_lr=0.01,
        decay_factor=0.999,
        weight_decay=0.001,
        beta=0.001,
        device=None,
        max_loops=100,
        patience=2,
        epochs_per_loop=None,
        initial_lr_refit=None,
        decay_factor_refit=None,
        beta_refit=None,
        binary_output="label",
        clip_to_observed=False,
        validate_every=10,
        tol=0.01,
        n_iter_no_change=5,
        precision="float32",
        val_seed=None,
        verbose=False,
        transform_max_iter=10,
        transform_tol=1e-4,
    ):
        self.val_proportion = val_proportion
        self.replacement_value = replacement_value
        self.columns_ignore = columns_ignore
        self.binary_feature_mask = binary_feature_mask
        self.categorical_column_map = categorical_column_map
        self.n_clusters = n_clusters
        self.k_neighbors = k_neighbors
        self.leiden_resolution = leiden_resolution
        self.leiden_objective = leiden_objective
        self.seed = seed
        self.scale_features = scale_features
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.layer_order_enc = layer_order_enc
        self.layer_order_dec = layer_order_dec
        self.latent_shared = latent_shared
        self.output_shared = output_shared
        self.batch_size = batch_size
        self.epochs = epochs
        self.initial_lr = initial_lr
        self.decay_factor = decay_factor
        self.weight_decay = weight_decay
        self.beta = beta
        self.device = device
        self.max_loops = max_loops
        self.patience = patience
        self.epochs_per_loop = epochs_per_loop
        self.initial_lr_refit = initial_lr_refit
        self.decay_factor_refit = decay_factor_refit
        self.beta_refit = beta_refit
        self.binary_output = binary_output
        self.clip_to_observed = clip_to_observed
        self.validate_every = validate_every
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.precision = precision
        self.val_seed = val_seed
        self.verbose = verbose
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit
    def run_settings(self) -> dict:
        """The ``run_cissvae`` keyword arguments these parameters stand for."""
        return {k: getattr(self, k) for k in _RUN_ARGS}

    def fit(self, X, y=None, clusters=None):
        """Cluster (unless ``clusters`` is given), train and keep what ``transform`` needs.

        Runs :func:`~ciss_vae.pipeline.run_cissvae` with this estimator's
        settings, so that the imputed training table (``fit_output_``) is the
        one ``run_cissvae`` returns. ``y`` is ignored.
        """

        X = self._check_input(X, reset=True)
        frame, kind = _to_frame(X)
        self._input_kind_ = kind
        with report_to_stderr(self.verbose):
            seed = resolve_seed(self.seed)
        settings = self.run_settings()
        settings["seed"] = seed
        self.clusterer_ = None
        if clusters is None:
            self.clusterer_ = self._fit_clusterer(X, seed)
            clusters = self.clusterer_.labels_
        imputed, model, dataset = run_cissvae(
            X, clusters=clusters, print_dataset=self.verbose, return_model=True, return_dataset=True,
            **{k: v for k, v in settings.items() if k not in ("n_clusters", "k_neighbors", "leiden_resolution",
                                                              "leiden_objective", "scale_features")})
        self.seed_ = seed
        self.fit_output_ = imputed
        self.schema_ = dataset.schema
        self.schema_.original = self.schema_.original.iloc[:0]  # keep no training rows
        self.means_ = np.asarray(dataset.means_, dtype=np.float64)
        self.stds_ = np.asarray(dataset.stds_, dtype=np.float64)
        self.observed_min_, self.observed_max_ = observed_range(dataset)
        self.cluster_names_ = np.asarray(dataset.cluster_names)
        self.n_clusters_ = int(dataset.n_clusters)
        self.column_dtypes_ = [str(t) for t in frame.dtypes]
        if self.clusterer_ is None:
            mask = np.isnan(dataset.raw_data.numpy())[:, ~self.schema_.ignored]
            self.cluster_assigner_ = _LabelAssigner.fit(mask, dataset.cluster_labels.numpy(), self.n_clusters_)
        else:
            self.cluster_assigner_ = self.clusterer_
        self.residual_std_ = self._residual_std(model, dataset)
        self.model_ = model.cpu().eval()
        self.training_history_ = model.training_history_
        self.fit_summary_ = model.fit_summary_
        return self

    def _check_input(self, X, reset):
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype="numeric", ensure_all_finite="allow-nan", ensure_min_samples=1)
        validate_data(self, X, reset=reset, skip_check_array=True)
        return X

    def _fit_clusterer(self, X, seed):
        opts = {k: v for k, v in dict(k_neighbors=self.k_neighbors, leiden_resolution=self.leiden_resolution,
                                      leiden_objective=self.leiden_objective).items() if v is not None}
        # as run_cissvae's clustering (cluster_on_missing), keeping the fitted clusterer
        return MissingnessClusterer(self.n_clusters, cols_ignore=ignored_for_clustering(X, self.columns_ignore),
                                    seed=seed, **opts).fit(X)

    @staticmethod
    def _residual_std(model, dataset) -> np.ndarray:
        """Per-column residual std (standardised units) on the validation cells; observed cells when none."""
        td = TrainingData.from_dataset(dataset, torch.device("cpu"))
        model = model.cpu()
        logits = predict_logits(model, td, dataset.data).numpy().astype(np.float64)
        target = ((dataset.raw_data.numpy().astype(np.float64) - dataset.means_) / dataset.stds_)
        val = dataset.val_mask.numpy()
        seen = dataset.masks.numpy()
        cont = dataset.schema.continuous
        out = np.zeros(dataset.n_features)
        for j in np.flatnonzero(cont):
            cells = val[:, j] if val[:, j].sum() >= 2 else seen[:, j]
            if cells.any():
                out[j] = float(np.sqrt(np.mean((logits[cells, j] - target[cells, j]) ** 2)))
        return out

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
        clusters = self.cluster_assigner_.predict(self._cluster_input(frame, missing))
        fill_cells = missing & ~s.ignored[None, :]
        return _NewRows(schema=new, raw_data=torch.tensor(values), means_=self.means_, stds_=self.stds_,
                        missing=missing, fill_mask=fill_cells, fill=torch.tensor(fill, dtype=torch.float32),
                        clusters=torch.as_tensor(clusters, dtype=torch.int64),
                        input_kind="frame" if isinstance(X, pd.DataFrame) else "array")

    def _cluster_input(self, frame, missing):
        if self.clusterer_ is None:
            return missing[:, ~self.schema_.ignored]
        nan = np.where(frame.isna().to_numpy(), np.nan, 0.0)
        if self.clusterer_._positional:
            return nan
        return pd.DataFrame(nan, columns=list(self.schema_.names))

    def _kinds(self):
        return ColumnKinds.from_schema(self.schema_)

    @torch.no_grad()
    def _logits(self, rows, fill):
        self.model_.eval()
        return self.model_(fill, rows.clusters, deterministic=True)[0]

    @torch.no_grad()
    def _converge(self, rows):
        """Iterate fill <- model(fill) on the missing cells (at most ``transform_max_iter`` passes).

        Each row stops on its own once none of its cells moves by more than
        ``transform_tol``, so a row's imputation does not depend on the other
        rows of the call.
        """
        kinds = self._kinds()
        mask = torch.as_tensor(rows.missing)
        fill = rows.fill
        active = mask.any(dim=1)
        for _ in range(int(self.transform_max_iter)):
            idx = torch.nonzero(active).squeeze(1)
            if idx.numel() == 0:
                break
            sub = fill[idx]
            new = torch.where(mask[idx], activate(self.model_(sub, rows.clusters[idx], deterministic=True)[0],
                                                  kinds), sub)
            fill = fill.index_copy(0, idx, new)
            moved = (new - sub).abs().amax(dim=1) > self.transform_tol
            active = torch.zeros_like(active).index_fill(0, idx[moved], True)
        return fill

    @torch.no_grad()
    def _draw(self, rows, fill, i) -> np.ndarray:
        """One multiple-imputation draw in original units (model columns)."""
        s = self.schema_
        seq = np.random.SeedSequence([int(self.seed_), 7919, int(i)])
        gen = torch.Generator().manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> 1))
        mask = torch.as_tensor(rows.missing)
        self.model_.eval()
        x = fill
        z = None
        for _ in range(3):  # a few stochastic passes: the draw's inputs come from the draw itself
            logits, _, _ = self.model_(x, rows.clusters, deterministic=False, generator=gen)
            z = logits.double()
            cont = torch.as_tensor(s.continuous)
            noise = torch.randn(z.shape, generator=gen, dtype=torch.float64) * torch.as_tensor(self.residual_std_)
            z = torch.where(cont, z + noise, z)
            sample = z.clone()
            standalone = torch.as_tensor(s.binary & ~s.dummy)
            u = torch.rand(z.shape, generator=gen, dtype=torch.float64)
            sample = torch.where(standalone, (u < torch.sigmoid(z)).double(), sample)
            for idx in s.categorical.values():
                g = torch.as_tensor(idx)
                gumbel = -torch.log(-torch.log(torch.rand((z.shape[0], len(idx)), generator=gen,
                                                          dtype=torch.float64).clamp_min(1e-300)))
                choice = (z[:, g] + gumbel).argmax(dim=1)
                sample[:, g] = F.one_hot(choice, len(idx)).double()
                z[:, g] = torch.log(sample[:, g].clamp_min(1e-12))  # the drawn class wins in output_values
            x = torch.where(mask, sample.float(), fill)
        # binary columns: the drawn 0/1 labels; continuous columns: drawn values
        values = output_values(rows, z, "probability", self._value_range())
        standalone = s.binary & ~s.dummy
        values[:, standalone] = sample.numpy()[:, standalone]
        return values

    def _value_range(self):
        """The training data's observed range per model column when ``clip_to_observed``, else None."""
        return (self.observed_min_, self.observed_max_) if self.clip_to_observed else None

    def _table(self, rows, values):
        out = rows.schema.to_frame(values, rows.fill_mask)
        if rows.input_kind != "frame":
            return out.to_numpy(dtype=np.float64)
        return out

    def get_feature_names_out(self, input_features=None):
        """The input feature names (an imputer keeps its columns)."""
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write ``model.json`` and ``weights.pt`` into the directory ``path`` (no pickle)."""
        from ciss_vae.persistence import save_imputer

        save_imputer(self, path)

    @classmethod
    def load(cls, path) -> "CISSVAEImputer":
        """Rebuild an imputer written by :meth:`save`; never executes code from the files."""
        from ciss_vae.persistence import load_imputer

        return load_imputer(path, cls)


def _schema_for_new_rows(frame: pd.DataFrame, fitted: TableSchema):
    """Schema and model values of new rows, read with the column roles learned in fit.

    Unlike fit, a column may be entirely missing here (its cells are imputed).
    """
    from ciss_vae.schema import _numeric_column

    values = np.full((len(frame), fitted.n_features), np.nan)
    for j, c in enumerate(fitted.model_columns):
        col = frame.iloc[:, c]
        try:
            v = _numeric_column(col, fitted.names[c])
        except TypeError:
            if fitted.ignored[j]:
                continue
            raise
        if np.isinf(v).any():
            raise ValueError(f"column {fitted.names[c]!r} holds an infinite value; use NaN for missing")
        values[:, j] = v
    new = TableSchema(names=list(frame.columns), index=frame.index, kind=fitted.kind,
                      model_columns=fitted.model_columns.copy(), ignored=fitted.ignored.copy(),
                      binary=fitted.binary.copy(), categorical=dict(fitted.categorical), original=frame)
    new._check_binary(values)
    return new, values
