"""Clinical statistics: AUROC with DeLong CIs and tests, proportion CIs, kappa, McNemar, bootstrap.

Validated against pROC's published values on its aSAH data (see tests/stats/test_stats_roc.py).
"""

from thyrovid.stats.agreement import cohen_kappa, kappa_table, mcnemar
from thyrovid.stats.auc_compare import delong_all_pairs, delong_test, delong_unpaired
from thyrovid.stats.bootstrap import bootstrap_ci
from thyrovid.stats.proportions import binary_metrics, confusion, proportion_ci
from thyrovid.stats.roc import DeLong, auc, auc_ci, choose_threshold, delong, roc_points

__all__ = [
    "DeLong",
    "auc",
    "auc_ci",
    "binary_metrics",
    "bootstrap_ci",
    "choose_threshold",
    "cohen_kappa",
    "confusion",
    "delong",
    "delong_all_pairs",
    "delong_test",
    "delong_unpaired",
    "kappa_table",
    "mcnemar",
    "proportion_ci",
    "roc_points",
]
