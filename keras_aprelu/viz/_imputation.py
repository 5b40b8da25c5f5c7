"""Noisy linear imputation (Rong et al., 2022), ROAD's way of removing
pixels without leaving a shape the model can read.

Each removed pixel becomes the weighted mean of its eight neighbours, 1/6
for the direct ones and 1/12 for the diagonal ones (the weights of the
neighbours outside the image are dropped), removed neighbours included:
one sparse linear system per image, solved for all channels at once, plus
Gaussian noise. The system is pytorch-grad-cam 1.5.7's (and the ROAD
authors'), built here with vectorized NumPy instead of a row-by-row
`lil_matrix`, and solved by the same SciPy solver.
"""

import numpy as np

# (row offset, column offset) -> weight.
NEIGHBOURS = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)


def _scipy():
    try:
        from scipy import sparse
        from scipy.sparse import linalg
    except ImportError:
        raise ImportError(
            "`viz.metrics.road` solves a sparse linear system per image, "
            'with SciPy: pip install "keras-aprelu[viz]" (or scipy)'
        ) from None
    return sparse, linalg


def check_available():
    """Raises the ImportError that says how to install SciPy, if it is
    missing (before any work)."""
    _scipy()


def impute(image, removed, noise=0.0, rng=None):
    """`image` (height, width, channels) with the pixels where `removed`
    (height, width) is true replaced by their noisy linear imputation."""
    sparse, linalg = _scipy()
    height, width = removed.shape
    flat = removed.reshape(-1)
    unknown = np.flatnonzero(flat)
    count = len(unknown)
    values = image.reshape(height * width, -1).astype("float64")
    out = values.copy()
    if count == 0:
        return image.copy()
    index_of = np.full(height * width, -1)
    index_of[unknown] = np.arange(count)
    row, col = np.divmod(unknown, width)
    diagonal = np.ones(count)
    rhs = np.zeros((count, values.shape[1]))
    rows, cols, weights = [], [], []
    for (dr, dc), weight in NEIGHBOURS:
        r, c = row + dr, col + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        diagonal[~inside] -= weight
        which = np.flatnonzero(inside)
        neighbour = r[inside] * width + c[inside]
        known = ~flat[neighbour]
        rhs[which[known]] -= weight * values[neighbour[known]]
        rows.append(which[~known])
        cols.append(index_of[neighbour[~known]])
        weights.append(np.full(int((~known).sum()), weight))
    rows.append(np.arange(count))
    cols.append(np.arange(count))
    weights.append(-diagonal)
    system = sparse.csc_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(count, count),
    )
    solved = linalg.spsolve(system, rhs).reshape(count, -1)
    if noise:
        solved = solved + noise * rng.standard_normal(solved.shape)
    out[unknown] = solved
    return out.reshape(image.shape).astype(image.dtype)
