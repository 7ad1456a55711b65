"""Masked reconstruction losses by column type, and the KL term.

Every loss is a sum over cells and rows (as in the published implementation,
so ``beta``, the learning rate and ``weight_decay`` keep their meaning). A cell
with weight 0 adds exactly nothing, also for binary columns (the published code
added ln 2 per masked binary cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ColumnKinds:
    """Index tensors of the continuous and binary columns and of each one-hot group."""

    continuous: torch.Tensor
    binary: torch.Tensor
    groups: list[torch.Tensor]
    n_features: int

    @classmethod
    def from_schema(cls, schema, device=None) -> "ColumnKinds":
        dummy = schema.dummy
        cont = np.flatnonzero(schema.continuous)
        binary = np.flatnonzero(schema.binary & ~dummy)
        groups = [torch.as_tensor(idx, device=device) for idx in schema.categorical.values()]
        return cls(
            torch.as_tensor(cont, device=device),
            torch.as_tensor(binary, device=device),
            groups,
            schema.n_features,
        )

    @property
    def all_continuous(self) -> bool:
        return len(self.continuous) == self.n_features

    def to(self, device) -> "ColumnKinds":
        return ColumnKinds(
            self.continuous.to(device), self.binary.to(device), [g.to(device) for g in self.groups], self.n_features
        )


def reconstruction_terms(logits, target, weight, kinds: ColumnKinds):
    """Summed squared error, binary cross-entropy and categorical cross-entropy.

    ``weight`` is a 0/1 float tensor shaped like ``target`` (``None``: every cell).
    A one-hot group counts for a row only when all its dummies have weight 1; its
    target is the argmax of the dummies.
    """
    zero = logits.new_zeros(())
    if kinds.all_continuous:
        err = (logits - target).square()
        return (err if weight is None else err * weight).sum(), zero, zero
    c = kinds.continuous
    mse = zero
    if len(c):
        err = (logits[:, c] - target[:, c]).square()
        mse = (err if weight is None else err * weight[:, c]).sum()
    bce = zero
    if len(kinds.binary):
        b = kinds.binary
        bce = F.binary_cross_entropy_with_logits(
            logits[:, b], target[:, b], weight=None if weight is None else weight[:, b], reduction="sum"
        )
    ce = zero
    for g in kinds.groups:
        per_row = F.cross_entropy(logits[:, g], target[:, g].argmax(dim=1), reduction="none")
        ce = ce + (per_row if weight is None else per_row * weight[:, g].amin(dim=1)).sum()
    return mse, bce, ce


def kl_divergence(mu, logvar):
    """KL(q(z|x) || N(0, I)), summed over rows and latent dimensions."""
    return -0.5 * torch.sum(1 + logvar - mu.square() - logvar.exp())


def loss_function(cluster, mask, recon_x, x, activation_groups=None, mu=None, logvar=None, beta=0.001,
                  return_components=False, imputable_mask=None, device=None, debug=False, *, kinds=None):
    """Masked VAE loss: reconstruction on cells where ``mask`` is true, plus ``beta`` * KL.

    Kept for the published signature. ``kinds`` (a :class:`ColumnKinds`) gives the
    column types; without it, ``activation_groups`` ({"continuous": [...],
    "binary": [...], <group>: [...]}) is used, and without either every column is
    continuous. ``imputable_mask`` (1 = may be trained on) is multiplied into the
    mask. Returns the total, or ``(total, mse, bce, ce)`` with ``return_components``.
    """
    if kinds is None:
        kinds = _kinds_from_groups(activation_groups, x.shape[1], x.device)
    weight = mask.to(x.dtype)
    if imputable_mask is not None:
        weight = weight * imputable_mask.to(x.dtype)
    mse, bce, ce = reconstruction_terms(recon_x, x, weight, kinds)
    total = mse + bce + ce + beta * kl_divergence(mu, logvar)
    return (total, mse, bce, ce) if return_components else total


def _kinds_from_groups(groups, p, device) -> ColumnKinds:
    if not groups:
        return ColumnKinds(torch.arange(p, device=device), torch.empty(0, dtype=torch.long, device=device), [], p)
    cont = torch.as_tensor(list(groups.get("continuous", [])), dtype=torch.long, device=device)
    binary = torch.as_tensor(list(groups.get("binary", [])), dtype=torch.long, device=device)
    cats = [torch.as_tensor(list(v), device=device) for k, v in groups.items() if k not in ("continuous", "binary")]
    return ColumnKinds(cont, binary, cats, p)
