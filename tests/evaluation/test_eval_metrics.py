"""Fréchet distance and KVD (mm_diffusion.evaluation.metrics) against closed forms and brute force."""
import numpy as np
import pytest
import scipy.linalg
import torch

from mm_diffusion.evaluation import metrics


def _sym_sqrt(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fd_reference(mu1, s1, mu2, s2):
    """Independent formula: tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2) (symmetric PSD, eigh)."""
    r = _sym_sqrt(s1)
    inner = r @ s2 @ r
    w = np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(w)))


def _random_cov(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# ---------------------------------------------------------------------------------------------
# Fréchet distance
# ---------------------------------------------------------------------------------------------
def test_frechet_zero_for_identical_sets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # a torch float32 tensor works and is converted to float64
    assert metrics.frechet_distance(torch.from_numpy(x).float(), torch.from_numpy(x).float()) == pytest.approx(0.0, abs=1e-5)


def test_frechet_symmetric_and_positive():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8))
    y = rng.normal(loc=0.5, scale=2.0, size=(250, 8))
    a, b = metrics.frechet_distance(x, y), metrics.frechet_distance(y, x)
    assert a > 1.0
    assert a == pytest.approx(b, rel=1e-9)


def test_frechet_from_stats_matches_independent_formula():
    rng = np.random.default_rng(2)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d, 3.0)
    got = metrics.frechet_distance_from_stats(mu1, s1, mu2, s2)
    assert got == pytest.approx(_fd_reference(mu1, s1, mu2, s2), rel=1e-8)


@pytest.mark.parametrize("d", [5, 64])
def test_frechet_methods_agree(d):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3 * d, d)) @ rng.normal(size=(d, d))
    y = rng.normal(loc=0.2, size=(2 * d, d))
    a = metrics.frechet_distance(x, y, method="sqrtm")
    b = metrics.frechet_distance(x, y, method="eigh")
    assert a == pytest.approx(b, rel=1e-7)
    assert metrics.frechet_distance(x, x, method="eigh") == pytest.approx(0.0, abs=1e-6 * np.trace(np.cov(x.T)))
    with pytest.raises(ValueError, match="method"):
        metrics.frechet_distance(x, y, method="svd")


def test_frechet_closed_form_for_known_gaussians():
    # Commuting (diagonal) covariances: FD = |mu1-mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    rng = np.random.default_rng(3)
    d = 4
    mu1, mu2 = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([4.0, 1.0, 1.0, 2.0])
    exact = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # = 6 + 1 + 1 + 0.25 = 8.25
    assert exact == pytest.approx(8.25)
    n = 200_000
    x = mu1 + rng.normal(size=(n, d)) * np.sqrt(a)
    y = mu2 + rng.normal(size=(n, d)) * np.sqrt(b)
    assert metrics.frechet_distance(x, y) == pytest.approx(exact, rel=0.01)

    # Non-commuting full covariances: sampled estimate converges to the stats-based value
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d, 2.0)
    exact2 = _fd_reference(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    assert metrics.frechet_distance(x, y) == pytest.approx(exact2, rel=0.02)


def test_frechet_rank_deficient_covariances():
    rng = np.random.default_rng(4)
    d = 32
    # 10 samples in 32 dimensions: covariances of rank 9, so S1 S2 is singular
    basis = rng.normal(size=(3, d))
    x = rng.normal(size=(10, 3)) @ basis
    y = rng.normal(size=(10, 3)) @ basis + 0.1
    with np.errstate(all="ignore"):
        got = metrics.frechet_distance(x, y)
    assert np.isfinite(got) and got >= 0.0
    mu1, s1 = metrics.feature_statistics(x)
    mu2, s2 = metrics.feature_statistics(y)
    assert got == pytest.approx(_fd_reference(mu1, s1, mu2, s2), rel=1e-3, abs=1e-6)
    assert metrics.frechet_distance(x, y, method="eigh") == pytest.approx(got, rel=1e-3, abs=1e-6)
    # identical rank-deficient sets: 0
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_eps_fallback_on_non_finite_sqrtm(monkeypatch):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 6)), rng.normal(size=(50, 6)) + 1
    expected = metrics.frechet_distance(x, y)
    calls = []
    real = scipy.linalg.sqrtm

    def flaky(a, *args, **kwargs):
        calls.append(a)
        if len(calls) == 1:
            return np.full_like(a, np.nan)
        return real(a, *args, **kwargs)

    monkeypatch.setattr(metrics.scipy.linalg, "sqrtm", flaky)
    got = metrics.frechet_distance(x, y, eps=1e-6)
    assert len(calls) == 2
    assert got == pytest.approx(expected, rel=1e-4)


def test_frechet_rejects_large_imaginary_part(monkeypatch):
    monkeypatch.setattr(metrics.scipy.linalg, "sqrtm", lambda a, *k, **kw: np.eye(a.shape[0]) * (1 + 5j))
    with pytest.raises(ValueError, match="imaginary"):
        metrics.frechet_distance(np.eye(3), np.eye(3)[::-1])


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="dimensions differ"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="2-D"):
        metrics.frechet_distance(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.frechet_distance(np.full((4, 3), np.nan), np.zeros((5, 3)))


# ---------------------------------------------------------------------------------------------
# KVD
# ---------------------------------------------------------------------------------------------
def _kvd_brute_force(x, y, degree=3, coef=1.0):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + coef) ** degree  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def test_kvd_equals_brute_force_double_loop():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(7, 5))
    y = rng.normal(loc=0.3, size=(9, 5))
    assert metrics.kernel_distance(x, y) == pytest.approx(_kvd_brute_force(x, y), rel=1e-10)
    assert metrics.kernel_distance(y, x) == pytest.approx(_kvd_brute_force(x, y), rel=1e-10)


def test_kvd_near_zero_for_same_distribution_and_larger_otherwise():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 16))
    y = rng.normal(size=(600, 16))
    z = rng.normal(loc=0.5, size=(600, 16))
    same = metrics.kernel_distance(x, y)
    diff = metrics.kernel_distance(x, z)
    assert abs(same) < 0.02
    assert diff > 20 * abs(same) and diff > 0.1


def test_kvd_subsets_reproducible():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 4)), rng.normal(loc=1.0, size=(50, 4))
    a = metrics.kernel_distance(x, y, num_subsets=5, subset_size=20, seed=3)
    b = metrics.kernel_distance(x, y, num_subsets=5, subset_size=20, seed=3)
    assert a == b
    # subsets of the full size are a permutation: the full estimate
    full = metrics.kernel_distance(x[:40], y[:40])
    assert metrics.kernel_distance(x, y[:40], num_subsets=2, subset_size=40) == pytest.approx(full, rel=1e-10)


def test_kvd_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.kernel_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="dimensions differ"):
        metrics.kernel_distance(np.zeros((4, 2)), np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------
# fixed 400-d features (the size of the I3D logits) against independent float64 numpy formulas
# ---------------------------------------------------------------------------------------------
def _fixed_features():
    rng = np.random.default_rng(2023)
    mix = rng.normal(size=(400, 400)) / 20.0
    x = rng.normal(size=(600, 400)) @ mix + 0.3
    y = rng.normal(loc=0.05, size=(500, 400)) @ (mix + 0.01 * rng.normal(size=(400, 400)))
    return x, y


def test_fvd_on_fixed_features_equals_eigenvalues_of_the_product():
    x, y = _fixed_features()
    mu1, mu2 = x.mean(0), y.mean(0)
    s1 = (x - mu1).T @ (x - mu1) / (len(x) - 1)
    s2 = (y - mu2).T @ (y - mu2) / (len(y) - 1)
    # tr sqrt(S1 S2) = sum of square roots of the (real, non-negative) eigenvalues of S1 S2
    eig = np.linalg.eigvals(s1 @ s2)
    assert np.max(np.abs(eig.imag)) < 1e-8 * np.max(np.abs(eig.real))
    ref = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                - 2 * np.sum(np.sqrt(np.clip(eig.real, 0, None))))
    for method in metrics.FD_METHODS:
        assert metrics.frechet_distance(x, y, method=method) == pytest.approx(ref, rel=1e-9)


def test_kvd_on_fixed_features_equals_the_expanded_sums():
    x, y = _fixed_features()
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    off = lambda k: k.sum() - np.einsum("ii->", k)  # noqa: E731
    ref = off(kxx) / (m * (m - 1)) + off(kyy) / (n * (n - 1)) - 2 * kxy.sum() / (m * n)
    assert metrics.kernel_distance(x, y) == pytest.approx(ref, rel=1e-12)
