"""Independent reference for KSE (docs/science.md §3), written with numpy only.

Prints JSON: for each hand-made case, its weights (shape [N_out, C_in, 3, 3]) and the
expected sparsity, entropy and KSE score per input channel. The Rust tests
(`tests/integration/kse_reference.rs`) run this script and compare.

It also scores each case the way the authors' public code does (reshaping W to
[C_in, N_out, 9] instead of slicing W[:, c]), so a test can show that for C_in != N_out
the two flag different channels.
"""

import json

import numpy as np

K, ALPHA, EPS = 5, 1.0, 1e-12


def min_max(values):
    low, high = values.min(), values.max()
    if not high > low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def entropy(kernels):
    """kernels: [N, 9]. Entropy of the k-nearest-neighbour density."""
    n = kernels.shape[0]
    k = min(K, n - 1)
    if k <= 0:
        return 0.0
    distances = np.sqrt(((kernels[:, None, :] - kernels[None, :, :]) ** 2).sum(axis=2))
    density = []
    for i in range(n):
        others = np.delete(distances[i], i)
        density.append(np.sort(others)[:k].sum())
    density = np.array(density)
    p = density / max(density.sum(), EPS)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def kse(per_channel_kernels):
    """per_channel_kernels: list over input channels of [N, 9] arrays."""
    sparsity = np.array([np.abs(k).sum() for k in per_channel_kernels])
    ent = np.array([entropy(k) for k in per_channel_kernels])
    raw = np.sqrt(min_max(sparsity) / (1 + ALPHA * min_max(ent)))
    return sparsity, ent, min_max(raw)


def correct(weights):
    n_out, c_in = weights.shape[:2]
    return kse([weights[:, c].reshape(n_out, 9) for c in range(c_in)])


def reshaped(weights):
    """The authors' variant: reshape instead of transpose."""
    n_out, c_in = weights.shape[:2]
    mixed = weights.reshape(c_in, n_out, 9)
    return kse([mixed[c] for c in range(c_in)])


def cases():
    rng = np.random.default_rng(20261128)
    out = {}
    # C_in != N_out, with one input channel made nearly empty and another strong.
    w = rng.normal(0, 0.2, size=(4, 6, 3, 3))
    w[:, 1] *= 0.02
    w[:, 4] *= 4.0
    out["c_in_differs_from_n_out"] = w
    # Fewer kernels than the neighbour count (N_out = 3 <= k).
    out["fewer_kernels_than_k"] = rng.normal(0, 1, size=(3, 4, 3, 3))
    # Duplicate kernels: every kernel of channel 0 identical, channel 2 two copies each.
    w = rng.normal(0, 0.5, size=(8, 3, 3, 3))
    w[:, 0] = w[0, 0]
    w[4:, 2] = w[:4, 2]
    out["duplicate_kernels"] = w
    # A constant (all-zero) channel and a constant-valued channel.
    w = rng.normal(0, 0.3, size=(6, 4, 3, 3))
    w[:, 0] = 0.0
    w[:, 3] = 0.7
    out["constant_channels"] = w
    return out


def main():
    result = {}
    for name, weights in cases().items():
        # Score exactly the float32 weights the Rust side receives.
        weights = weights.astype(np.float32).astype(np.float64)
        s, e, score = correct(weights)
        _, _, wrong = reshaped(weights)
        result[name] = {
            "shape": list(weights.shape),
            "weights": weights.ravel().tolist(),
            "sparsity": s.tolist(),
            "entropy": e.tolist(),
            "score": score.tolist(),
            "reshape_score": wrong.tolist(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
