import numpy as np
import pytest
from scipy import stats

from ciss_vae.pooling import pool


def test_rubins_rules_by_hand():
    q = np.array([1.0, 1.2, 0.9, 1.1])
    u = np.array([0.04, 0.05, 0.04, 0.03])
    m = 4
    res = pool(q, u)
    w, b = u.mean(), q.var(ddof=1)
    t = w + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / t
    df = (m - 1) / lam**2
    assert res.estimate == pytest.approx(q.mean())
    assert res.within == pytest.approx(w) and res.between == pytest.approx(b)
    assert res.variance == pytest.approx(t) and res.se == pytest.approx(np.sqrt(t))
    assert res.df == pytest.approx(df)
    assert res.riv == pytest.approx((1 + 1 / m) * b / w) and res.lambda_ == pytest.approx(lam)
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    assert res.ci[0] == pytest.approx(q.mean() - half) and res.ci[1] == pytest.approx(q.mean() + half)
    assert res.m == 4


def test_barnard_rubin_df():
    q, u = [1.0, 1.2, 0.9], [0.04, 0.05, 0.04]
    m, dfcom = 3, 20
    res = pool(q, u, dfcom=dfcom)
    lam = res.lambda_
    old = (m - 1) / lam**2
    obs = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    assert res.df == pytest.approx(1 / (1 / old + 1 / obs))
    assert res.df < min(old, dfcom)
    # large complete-data df: Barnard-Rubin tends to the classic df
    assert pool(q, u, dfcom=1e9).df == pytest.approx(pool(q, u).df, rel=1e-3)


def test_vector_parameters_and_alpha():
    q = np.array([[1.0, 2.0], [1.1, 2.4], [0.9, 2.2]])
    u = np.full_like(q, 0.01)
    res = pool(q, u, alpha=0.1)
    assert res.estimate.shape == (2,) and res.ci[0].shape == (2,)
    for j in range(2):
        one = pool(q[:, j], u[:, j], alpha=0.1)
        assert res.estimate[j] == pytest.approx(one.estimate)
        assert res.ci[1][j] == pytest.approx(one.ci[1])
    assert (pool(q, u, alpha=0.1).ci[1] < pool(q, u).ci[1]).all()


def test_no_between_variance_gives_normal_interval():
    res = pool([2.0, 2.0, 2.0], [0.25, 0.25, 0.25])
    assert res.between == 0 and np.isinf(res.df)
    assert res.ci[1] == pytest.approx(2.0 + stats.norm.ppf(0.975) * 0.5)
    assert pool([2.0, 2.0], [0.25, 0.25], dfcom=10).df == pytest.approx(11 / 13 * 10)


def test_bad_input():
    with pytest.raises(ValueError, match="at least two"):
        pool([1.0], [0.1])
    with pytest.raises(ValueError, match="shape"):
        pool([1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="non-negative"):
        pool([1.0, 2.0], [0.1, -0.1])
    with pytest.raises(ValueError, match="finite"):
        pool([1.0, np.nan], [0.1, 0.1])
    with pytest.raises(ValueError, match="dfcom"):
        pool([1.0, 2.0], [0.1, 0.1], dfcom=0)
