"""F1 score as an `evaluate` metric module that loads offline; `average="macro"` for the unweighted class mean."""

import datasets
import evaluate
from sklearn.metrics import f1_score


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="F1 score (harmonic mean of precision and recall), per scikit-learn's f1_score.",
            citation="",
            inputs_description="predictions, references: class ids (int); average: binary, macro, micro, weighted.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, average="binary", labels=None):
        return {"f1": float(f1_score(references, predictions, average=average, labels=labels, zero_division=0))}
