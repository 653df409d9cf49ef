"""Random forest family (`random_forest`): bootstrap-row trees with best-threshold splits, beside the
extra trees (random thresholds) of ml.zoo.

Why both: extra trees pick a random threshold per candidate column, a random forest searches the best
one on a bootstrap sample of rows. On a noisy cross-sectional target the two err differently (the
forest's splits fit more, its bootstrap averages more), so the ensemble gets a second, decorrelated
tree model. Large leaves (`min_samples_leaf`) keep each leaf's mean estimate from chasing the noise.

Cost: a best-threshold split sorts every candidate column, so `max_columns` caps the candidate columns
per split exactly as for extra trees (`capped_max_features`, 16 on 126 columns lies between sqrt(p)
and p/3), and `max_samples` draws half the training rows per tree (a smaller bootstrap: cheaper trees,
less correlated with each other).
"""

from __future__ import annotations

from ml.models.backed import ET_MAX_COLUMNS, _SklearnBacked, capped_max_features


class RandomForestModel(_SklearnBacked):
    """Random forest regressor (sklearn), bootstrap rows, capped candidate columns per split, one
    thread, seeded. Stored with joblib."""

    family = "random_forest"
    grid = {"min_samples_leaf": [200, 1000]}

    def __init__(self, n_estimators: int = 60, max_depth: int | None = 8, min_samples_leaf: int = 200,
                 max_features: float = 0.3, max_columns: int | None = ET_MAX_COLUMNS, max_samples: float | None = 0.5,
                 random_state: int = 0, n_jobs: int = 1):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_columns = max_columns
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self, n_features: int):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            max_features=capped_max_features(self.max_features, n_features, self.max_columns),
            bootstrap=True, max_samples=self.max_samples, random_state=self.random_state, n_jobs=self.n_jobs,
        )
