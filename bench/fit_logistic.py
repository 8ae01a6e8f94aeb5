"""Fit the rational logistic of tvmopt/passes/fast_logistic.py and print its coefficients and
its float32 error: 1/2 + x P(x²) / Q(x²) on [0, CLAMP], Q's constant 1, by linearized least
squares (x P(t) - f Q(t) ~ 0 weighted by 1 / |Q| of the last step, t = x² / CLAMP² for
conditioning), the weights pushed toward the largest errors (Lawson) so that it approaches the
minimax fit.

    python bench/fit_logistic.py [--degrees 3 4] [--steps 120]
"""

import argparse

import numpy as np

from tvmopt.passes.fast_logistic import CLAMP, horner


def fit(numerator_degree: int, denominator_degree: int, steps: int):
    """(P's, Q's) coefficients in x², lowest power first."""
    x = np.linspace(0, CLAMP, 60001)[1:]
    scale = CLAMP * CLAMP
    t, f = x * x / scale, 1 / (1 + np.exp(-x)) - 0.5
    p_terms = np.stack([x * t**k for k in range(numerator_degree + 1)], 1)
    q_terms = np.stack([f * t**k for k in range(1, denominator_degree + 1)], 1)
    design, weights, q = np.concatenate([p_terms, -q_terms], 1), np.ones_like(x), np.ones_like(x)
    for _ in range(steps):
        row_weights = weights / np.abs(q)
        solution, *_ = np.linalg.lstsq(design * row_weights[:, None], f * row_weights, rcond=None)
        p, rest = solution[: numerator_degree + 1], solution[numerator_degree + 1 :]
        q_coefficients = np.r_[1.0, rest]
        q = np.polyval(q_coefficients[::-1], t)
        error = np.abs(x * np.polyval(p[::-1], t) / q - f)
        weights = weights * (error / error.max()) ** 0.3 + 1e-12
        weights /= weights.max()
    unscale = lambda c: np.float32([v / scale**k for k, v in enumerate(c)])  # noqa: E731
    return unscale(p), unscale(q_coefficients)


def float32_error(numerator, denominator) -> float:
    """Largest |rational - logistic| over [-30, 30], evaluated in float32 as the kernels do."""
    x = np.linspace(-30, 30, 2_000_001, dtype=np.float32)
    v = np.clip(x, -CLAMP, CLAMP)
    squared = v * v
    rational = v * horner(numerator, squared) / horner(denominator, squared) + np.float32(0.5)
    return float(np.abs(rational - 1 / (1 + np.exp(-x.astype(np.float64)))).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=int, nargs=2, default=[3, 4])
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args()
    numerator, denominator = fit(*args.degrees, args.steps)
    print("NUMERATOR =", tuple(np.format_float_scientific(c, unique=True) for c in numerator))
    print("DENOMINATOR =", tuple(np.format_float_scientific(c, unique=True) for c in denominator))
    print(f"float32 error: {float32_error(numerator, denominator):.3g}")


if __name__ == "__main__":
    main()
