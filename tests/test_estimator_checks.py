"""scikit-learn's own estimator contract, run on numpy input."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from dkmeans import GaussianMixture, KMeans, MiniBatchKMeans

# Checks that cannot apply to k-means, with the reason (scikit-learn lists the
# same for its own KMeans). A mixture starts from such a k-means fit: it
# finds the same components on weighted and on repeated rows, but not always
# in the same order (predict_proba's columns), so the check passes or not by
# the seed.
RANDOM_SEEDING = (
    "k-means from a random seeding: weights change which rows are drawn, so weighted and "
    "repeated data take different random paths (the deterministic equivalence from fixed "
    "initial centers is tested in test_kmeans.py, test_sparse.py and, for mixtures, in "
    "test_mixture.py)")
PROBA_TAGS = (
    "KMeans has predict_proba (soft assignments), and the check then reads classifier "
    "tags, which a clusterer has none of; fit, predict and transform on every sparse "
    "format have passed by then (and are tested in test_sparse.py)")
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": RANDOM_SEEDING,
    "check_sample_weight_equivalence_on_sparse_data": RANDOM_SEEDING,
}


def _expected_failed(estimator):
    if isinstance(estimator, KMeans):
        return {**EXPECTED_FAILED, "check_estimator_sparse_array": PROBA_TAGS,
                "check_estimator_sparse_matrix": PROBA_TAGS}
    return EXPECTED_FAILED


@parametrize_with_checks(
    [KMeans(n_clusters=3, random_state=0), KMeans(n_clusters=2, init="random", n_init=2,
                                                  max_iter=5, random_state=0),
     MiniBatchKMeans(n_clusters=3, random_state=0, batch_size=64),
     GaussianMixture(n_components=2, random_state=0, max_iter=20)],
    expected_failed_checks=_expected_failed,
)
def test_sklearn_contract(estimator, check):
    check(estimator)
