"""Missingness patterns: distinct rows of a mask, repeated-measure groups found from column names, group fractions."""

from __future__ import annotations

import logging
import re
from collections import defaultdict

import numpy as np

from ciss_vae.tabular import resolve_columns

logger = logging.getLogger(__name__)

__all__ = ["collapse", "detect_repeated_measures", "feature_groups", "group_fractions"]


def collapse(mask):
    """Distinct rows of a boolean mask: (first row of each, row -> pattern, counts)."""
    packed = np.packbits(mask, axis=1)
    width = packed.shape[1]
    if width <= 8:
        buf = np.zeros((len(mask), 8), dtype=np.uint8)
        buf[:, :width] = packed
        keys = buf.view("<u8").ravel()
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, width))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                          return_counts=True)
    return first, inverse.ravel(), counts


def detect_repeated_measures(names):
    """Groups of repeated-measure columns found from their names, or None.

    A name splits into a stem and a time point, either at its last separator
    (``_ . -`` or space: ``bmi_1``, ``Y1_t2``) or, for fixed-width codes where
    every name of the data ends in a digit run of the same length, before its
    last ``L`` digits (``Y11`` .. ``Y55`` -> stems ``Y1`` .. ``Y5``; not when
    the numbers are consecutive, as ``lab10`` .. ``lab29``). A split counts as
    a repeated-measures design only if at least two stems have at least two
    columns each and share at least two time points (compared by their
    digits, so ``bmi_1`` and ``hb_t1`` share time 1); among the
    valid splits the one covering the most columns (then the most stems)
    wins. Generic names (``x1 .. x20``, ``feature_0 ..``) give a single stem
    and therefore None. Returns ``{stem: [column positions]}`` for the stems
    with two or more columns.
    """
    names = [n for n in names]
    if len(names) < 4 or not all(isinstance(n, str) for n in names):
        return None
    runs = [len(m.group(0)) if (m := re.search(r"\d+$", n)) else 0 for n in names]
    splitters = [lambda n: (m.group(1), m.group(2))
                 if (m := re.match(r"^(.+)[_.\- ]([^_.\- ]*\d[^_.\- ]*)$", n)) else None]
    width = max(set(runs) - {0, 1}, key=runs.count, default=0)  # commonest code width
    nums = sorted(int(n[-width:]) for n, r in zip(names, runs) if width and r == width)
    # fixed-width codes whose numbers are not just consecutive (lab10..lab29 is a numbering)
    if len(nums) >= 4 and nums != list(range(nums[0], nums[0] + len(nums))):
        for cut in range(1, width):
            splitters.append(lambda n, cut=cut: (n[:-cut].rstrip("_.- "), n[-cut:])
                             if re.search(rf"(?<!\d)\d{{{width}}}$", n) else None)
    best, best_key = None, (0, 0)
    for split in splitters:
        groups = defaultdict(list)
        times = defaultdict(set)
        for i, n in enumerate(names):
            s = split(n)
            if s is not None and s[0]:
                groups[s[0]].append(i)
                times[s[0]].add(re.sub(r"\D", "", s[1]))
        groups = {k: v for k, v in groups.items() if len(v) >= 2}
        if len(groups) < 2:
            continue
        stems = list(groups)
        shared = any(len(times[a] & times[b]) >= 2
                     for ia, a in enumerate(stems) for b in stems[ia + 1:])
        key = (sum(len(v) for v in groups.values()), len(groups))
        if shared and key > best_key:
            best, best_key = groups, key
    return best


def feature_groups(spec, columns, positional: bool) -> dict:
    """``{group name: member columns}`` covering every column of ``columns`` once.

    ``spec``: ``"auto"`` (repeated measures found by :func:`detect_repeated_measures`;
    none for positional columns), None (one group per column) or a dict of
    group name -> column(s). Columns in no group get a group of their own,
    named after the column (with ``'`` appended while the name is taken).
    """
    if spec is None:
        return {str(c): [c] for c in columns}
    if isinstance(spec, str):
        if spec != "auto":
            raise ValueError(f"feature_groups must be 'auto', None or a dict; got {spec!r}")
        found = None if positional else detect_repeated_measures(columns)
        groups = {} if found is None else {stem: [columns[i] for i in v] for stem, v in found.items()}
        if groups:
            logger.info("feature groups from repeated-measure names: %s", {k: len(v) for k, v in groups.items()})
    elif isinstance(spec, dict):
        groups = {}
        for g, members in spec.items():
            members = [members] if isinstance(members, (str, int)) else list(members)
            pos = sorted(resolve_columns(members, columns, "feature_groups", positional=False))
            groups[str(g)] = [columns[i] for i in pos]
    else:
        raise TypeError("feature_groups must be 'auto', None or a dict")
    claimed = {c for v in groups.values() for c in v}
    for c in columns:
        if c not in claimed:
            key = str(c)
            while key in groups:  # a column named like a group stem
                key += "'"
            groups[key] = [c]
    return groups


def group_fractions(mask, columns, groups: dict) -> np.ndarray:
    """For each row of the boolean ``mask`` (columns ``columns``), the fraction of each group's columns missing."""
    pos = {c: i for i, c in enumerate(columns)}
    out = np.empty((len(mask), len(groups)))
    for j, members in enumerate(groups.values()):
        out[:, j] = mask[:, [pos[c] for c in members]].mean(axis=1)
    return out
