import numpy as np
import pytest
from sklearn.datasets import make_blobs


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def blobs():
    """2,000 x 5 float64 rows around 6 well-separated centers."""
    X, y = make_blobs(n_samples=2000, centers=6, n_features=5, cluster_std=1.0,
                      random_state=42)
    return X, y
