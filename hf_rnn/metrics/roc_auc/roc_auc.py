"""ROC-AUC for binary tasks as an `evaluate` metric module that loads offline."""

import datasets
import evaluate
from sklearn.metrics import roc_auc_score


class RocAuc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Area under the ROC curve of the positive class's score.",
            citation="",
            inputs_description="prediction_scores: probability of the positive class; references: 0/1 labels.",
            features=datasets.Features(
                {"prediction_scores": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, prediction_scores, references):
        return {"roc_auc": float(roc_auc_score(references, prediction_scores))}
