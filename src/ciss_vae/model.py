"""The CISS-VAE network: shared layers, and per-cluster layers held as stacked weights.

A per-cluster ("unshared") layer keeps the K replicas of a Linear layer as one
``[K, in, out]`` weight. A batch is routed once per forward pass: its rows are
grouped by cluster into a padded ``[chunks, t, width]`` block, every run of
consecutive unshared layers is one batched matmul per layer on that block, and
the rows are put back in order when a shared layer (or the output) needs them.
The cost is that of a dense layer plus a little padding, whatever K is.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_WORDS = {"shared": "shared", "s": "shared", "unshared": "unshared", "u": "unshared"}
# A gathered [in, out] weight costs about as much as this many padded rows.
_GATHER_COST_ROWS = 16


def normalize_layer_order(order, n_layers: int, name: str) -> list[str]:
    """``["shared", "unshared", ...]`` from any of "shared"/"unshared"/"s"/"u", any case."""
    if isinstance(order, str) or not hasattr(order, "__len__"):
        raise TypeError(f"`{name}` must be a list of 'shared'/'unshared' (or 's'/'u'), got {order!r}")
    words = []
    for item in order:
        word = _WORDS.get(str(item).strip().lower()) if isinstance(item, str) else None
        if word is None:
            raise ValueError(f"`{name}` holds {item!r}; use 'shared', 'unshared', 's' or 'u'")
        words.append(word)
    if len(words) != n_layers:
        raise ValueError(f"`{name}` has {len(words)} entries, but `hidden_dims` has {n_layers} layers")
    return words


class Routing:
    """Where each row of a batch sits in a cluster-grouped, padded block.

    Rows of one cluster fill consecutive chunks of ``t`` slots; ``chunk_cluster``
    says which replica serves each chunk (``None`` when chunk i is cluster i).
    """

    def __init__(self, clusters: torch.Tensor, num_clusters: int):
        n = clusters.numel()
        counts = torch.bincount(clusters, minlength=num_clusters)
        host = counts.cpu().numpy()
        t = _chunk_size(host)
        if t == int(host.max()):
            per_cluster = np.ones(num_clusters, dtype=np.int64)
            self.chunk_cluster = None
        else:
            per_cluster = -(-host // t)
            self.chunk_cluster = torch.repeat_interleave(
                torch.arange(num_clusters, device=clusters.device),
                torch.as_tensor(per_cluster, device=clusters.device),
            )
        self.t = t
        self.n_chunks = int(per_cluster.sum())
        if self.n_chunks == 1:
            self.pos = None
            return
        order = torch.argsort(clusters, stable=True)
        c_sorted = clusters[order]
        row_start = torch.cumsum(counts, 0) - counts
        chunk_start = torch.as_tensor(np.cumsum(per_cluster) - per_cluster, device=clusters.device)
        rank = torch.arange(n, device=clusters.device) - row_start[c_sorted]
        slot = (chunk_start[c_sorted] + torch.div(rank, t, rounding_mode="floor")) * t + rank % t
        self.pos = torch.empty_like(slot).scatter_(0, order, slot)

    def pad(self, h: torch.Tensor) -> torch.Tensor:
        if self.pos is None:
            return h.unsqueeze(0)
        block = h.new_zeros(self.n_chunks * self.t, h.shape[1]).index_copy(0, self.pos, h)
        return block.view(self.n_chunks, self.t, h.shape[1])

    def unpad(self, block: torch.Tensor) -> torch.Tensor:
        if self.pos is None:
            return block.squeeze(0)
        return block.reshape(-1, block.shape[-1]).index_select(0, self.pos)


def _chunk_size(counts: np.ndarray) -> int:
    """Chunk length minimising padded rows plus weight gathers for these cluster sizes.

    ``t = max(counts)`` gives one chunk per cluster (empty ones for absent
    clusters) and needs no gather; a smaller ``t`` splits large clusters into
    several chunks, each of which gathers its cluster's weight.
    """
    top = max(int(counts.max()), 1)
    present = counts[counts > 0]
    best, best_cost = top, len(counts) * top
    t = 8
    while t < top:
        chunks = int((-(-present // t)).sum())
        cost = chunks * (t + _GATHER_COST_ROWS)
        if cost < best_cost:
            best, best_cost = t, cost
        t *= 2
    return best


def init_uniform(layer: nn.Module, fan_in: int, generator=None) -> None:
    """PyTorch's default Linear initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from ``generator``."""
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))


class ClusterLinear(nn.Module):
    """K independent Linear layers as one ``[K, in, out]`` weight, applied to a padded block."""

    def __init__(self, num_clusters: int, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(num_clusters, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_clusters, out_features))
        self.reset_parameters()

    def reset_parameters(self, generator=None) -> None:
        """Each replica as :class:`torch.nn.Linear` would be: U(-1/sqrt(in), 1/sqrt(in))."""
        init_uniform(self, self.in_features, generator)

    def forward(self, block: torch.Tensor, route: Routing) -> torch.Tensor:
        w, b = self.weight, self.bias
        if route.chunk_cluster is not None:
            w, b = w.index_select(0, route.chunk_cluster), b.index_select(0, route.chunk_cluster)
        return torch.baddbmm(b.unsqueeze(1), block, w)

    def extra_repr(self) -> str:
        return f"clusters={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"


class CISSVAE(nn.Module):
    """Clustering-Informed Shared-Structure VAE.

    Parameters
    ----------
    input_dim : int
        Number of model columns.
    hidden_dims : list of int
        Encoder widths; the decoder uses them reversed.
    layer_order_enc, layer_order_dec : list of str
        For each encoder (decoder) layer, "shared" (one layer for all rows) or
        "unshared" (one replica per cluster); "s"/"u" and any case are accepted.
        Each must have one entry per hidden layer.
    latent_shared : bool
        One pair of mean / log-variance heads for all clusters, or one per cluster.
    latent_dim : int
        Size of the latent code.
    output_shared : bool
        One output head for all clusters, or one per cluster.
    num_clusters : int
        Number of clusters K (rows are routed by labels ``0..K-1``).
    activation_groups : dict, optional
        Kept for compatibility; the output activations are applied by the caller
        from the dataset's column types.
    debug : bool, default=False
        Kept for compatibility; has no effect.

    Notes
    -----
    The forward pass returns raw outputs (logits) for every column, as in the
    published implementation. Unlike it, unshared layers are computed batched from
    stacked weights (no loop over clusters), the decoder accepts the same layer
    words as the encoder, and orders of the wrong length raise instead of being
    silently truncated. The mean and log-variance heads are one layer of width
    ``2 * latent_dim``.

    Examples
    --------
    >>> import torch
    >>> from ciss_vae.classes.vae import CISSVAE
    >>> model = CISSVAE(input_dim=6, hidden_dims=[8, 4], layer_order_enc=["u", "s"],
    ...                 layer_order_dec=["shared", "Unshared"], latent_shared=False,
    ...                 latent_dim=2, output_shared=False, num_clusters=3)
    >>> logits, mu, logvar = model(torch.zeros(5, 6), torch.tensor([0, 2, 1, 2, 0]), deterministic=True)
    >>> tuple(logits.shape), tuple(mu.shape)
    ((5, 6), (5, 2))
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims,
        layer_order_enc,
        layer_order_dec,
        latent_shared: bool,
        latent_dim: int,
        output_shared: bool,
        num_clusters: int,
        activation_groups=None,
        debug: bool = False,
    ):
        super().__init__()
        hidden_dims = [int(h) for h in hidden_dims]
        if not hidden_dims or min(hidden_dims) < 1:
            raise ValueError(f"`hidden_dims` must be a non-empty list of positive widths, got {hidden_dims}")
        for name, value in (("input_dim", input_dim), ("latent_dim", latent_dim), ("num_clusters", num_clusters)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        self.input_dim, self.latent_dim, self.num_clusters = int(input_dim), int(latent_dim), int(num_clusters)
        self.hidden_dims = hidden_dims
        self.layer_order_enc = normalize_layer_order(layer_order_enc, len(hidden_dims), "layer_order_enc")
        self.layer_order_dec = normalize_layer_order(layer_order_dec, len(hidden_dims), "layer_order_dec")
        self.latent_shared, self.output_shared = bool(latent_shared), bool(output_shared)
        self.activation_groups = activation_groups
        self.debug = debug
        self.final_lr = None

        enc = [self.input_dim] + hidden_dims
        dec = [self.latent_dim] + hidden_dims[::-1]
        self.encoder = nn.ModuleList(
            self._layer(o == "shared", a, b) for o, a, b in zip(self.layer_order_enc, enc, enc[1:])
        )
        self.latent = self._layer(self.latent_shared, enc[-1], 2 * self.latent_dim)
        self.decoder = nn.ModuleList(
            self._layer(o == "shared", a, b) for o, a, b in zip(self.layer_order_dec, dec, dec[1:])
        )
        self.output = self._layer(self.output_shared, dec[-1], self.input_dim)
        self._routed = any(isinstance(m, ClusterLinear) for m in self.modules())

    def _layer(self, shared: bool, d_in: int, d_out: int) -> nn.Module:
        return nn.Linear(d_in, d_out) if shared else ClusterLinear(self.num_clusters, d_in, d_out)

    @staticmethod
    def _layer_step(layer, h, padded: bool, route):
        if isinstance(layer, ClusterLinear):
            return layer(h if padded else route.pad(h), route), True
        return layer(route.unpad(h) if padded else h), False

    def encode(self, x, route):
        h, padded = x, False
        for layer in self.encoder:
            h, padded = self._layer_step(layer, h, padded, route)
            h = F.relu(h)
        h, padded = self._layer_step(self.latent, h, padded, route)
        h = route.unpad(h) if padded else h
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z, route):
        h, padded = z, False
        for layer in self.decoder:
            h, padded = self._layer_step(layer, h, padded, route)
            h = F.relu(h)
        h, padded = self._layer_step(self.output, h, padded, route)
        return route.unpad(h) if padded else h

    def forward(self, x, cluster_labels, deterministic: bool = False, *, generator=None):
        """Return ``(logits, mu, logvar)`` for rows ``x`` of clusters ``cluster_labels``."""
        route = Routing(cluster_labels, self.num_clusters) if self._routed else None
        mu, logvar = self.encode(x, route)
        if deterministic:
            z = mu
        else:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z, route), mu, logvar

    def reset_parameters(self, generator=None) -> None:
        """Re-initialise every layer as PyTorch's Linear does, drawing from ``generator``."""
        for m in self.modules():
            if isinstance(m, ClusterLinear):
                m.reset_parameters(generator)
            elif isinstance(m, nn.Linear):
                init_uniform(m, m.in_features, generator)

    def set_final_lr(self, lr: float) -> None:
        """Store the learning rate reached at the end of a training phase."""
        self.final_lr = float(lr)

    def get_final_lr(self) -> float | None:
        """The learning rate stored by :meth:`set_final_lr`."""
        return self.final_lr

    def set_activation_groups(self, groups) -> None:
        """Kept for compatibility with the published API."""
        self.activation_groups = groups

    def constructor_kwargs(self) -> dict:
        """The keyword arguments that rebuild this architecture."""
        return dict(
            input_dim=self.input_dim,
            hidden_dims=list(self.hidden_dims),
            layer_order_enc=list(self.layer_order_enc),
            layer_order_dec=list(self.layer_order_dec),
            latent_shared=self.latent_shared,
            latent_dim=self.latent_dim,
            output_shared=self.output_shared,
            num_clusters=self.num_clusters,
        )


def _weights(layer) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's weight as ``[K, in, out]`` and bias as ``[K, out]`` (K = 1 for a shared layer)."""
    if isinstance(layer, ClusterLinear):
        return layer.weight.detach(), layer.bias.detach()
    return layer.weight.detach().T.unsqueeze(0), layer.bias.detach().unsqueeze(0)


def _set_weights(layer, w: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        if isinstance(layer, ClusterLinear):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        else:
            layer.weight.copy_(w[0].T)
            layer.bias.copy_(b[0])


def _block_diagonal(ws: list) -> torch.Tensor:
    """``[K, in_m, out_m]`` weights side by side on the diagonal of one ``[K, sum in, sum out]`` weight."""
    k = ws[0].shape[0]
    out = ws[0].new_zeros(k, sum(w.shape[1] for w in ws), sum(w.shape[2] for w in ws))
    i = j = 0
    for w in ws:
        out[:, i : i + w.shape[1], j : j + w.shape[2]] = w
        i, j = i + w.shape[1], j + w.shape[2]
    return out


def average_of(models) -> CISSVAE:
    """One :class:`CISSVAE` whose deterministic output is the mean of ``models``' outputs.

    The members (same architecture) sit side by side in one network of
    ``len(models)`` times their widths and latent size: the first layer's units
    are concatenated, every later layer is block-diagonal (no weight between
    members), the latent code is the members' codes one after the other, and
    the output layer averages the members' logits. So the average is a plain
    ``CISSVAE`` that every face (imputing, saving, plotting, refitting) takes
    as it is. Continuous outputs are the members' mean; binary and categorical
    logits are averaged as logits.

    Examples
    --------
    >>> import torch
    >>> from ciss_vae.model import CISSVAE, average_of
    >>> kw = dict(input_dim=4, hidden_dims=[6], layer_order_enc=["u"], layer_order_dec=["s"],
    ...           latent_shared=True, latent_dim=2, output_shared=False, num_clusters=2)
    >>> a, b = CISSVAE(**kw), CISSVAE(**kw)
    >>> x, c = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    >>> mean = (a(x, c, deterministic=True)[0] + b(x, c, deterministic=True)[0]) / 2
    >>> both = average_of([a, b])
    >>> both.hidden_dims, both.latent_dim
    ([12], 4)
    >>> bool(torch.allclose(both(x, c, deterministic=True)[0], mean, atol=1e-6))
    True
    """
    models = list(models)
    kw = models[0].constructor_kwargs()
    if any(m.constructor_kwargs() != kw for m in models[1:]):
        raise ValueError("average_of needs models of one architecture")
    n = len(models)
    if n == 1:
        return copy.deepcopy(models[0])
    latent = kw["latent_dim"]
    merged = CISSVAE(**dict(kw, hidden_dims=[h * n for h in kw["hidden_dims"]], latent_dim=latent * n))
    merged = merged.to(next(models[0].parameters()).device)
    for pos, layer in enumerate(merged.encoder):
        ws, bs = zip(*(_weights(m.encoder[pos]) for m in models))
        w = torch.cat(ws, dim=2) if pos == 0 else _block_diagonal(ws)
        _set_weights(layer, w, torch.cat(bs, dim=1))
    ws, bs = zip(*(_weights(m.latent) for m in models))
    # member m's [mu, logvar] columns go to mu block m and logvar block m of the merged code
    order = [m * 2 * latent + j for half in (0, latent) for m in range(n) for j in range(half, half + latent)]
    _set_weights(merged.latent, _block_diagonal(ws)[:, :, order], torch.cat(bs, dim=1)[:, order])
    for pos, layer in enumerate(merged.decoder):
        ws, bs = zip(*(_weights(m.decoder[pos]) for m in models))
        _set_weights(layer, _block_diagonal(ws), torch.cat(bs, dim=1))
    ws, bs = zip(*(_weights(m.output) for m in models))
    _set_weights(merged.output, torch.cat(ws, dim=1) / n, torch.stack(bs).mean(dim=0))
    if models[0].final_lr is not None:
        merged.set_final_lr(models[0].final_lr)
    return merged
