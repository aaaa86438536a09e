"""Which perceived feature costs the network its AUROC (BENCHMARKS.md, third round; not a claim).

    python benchmarks/_aux_mix.py WORK PHANTOM/truth.csv DUMP

DUMP holds the 11 TI-RADS feature logits per clip that `_learning_probe.py --aux W --dump DUMP`
saved. A logistic regression (C = 0.1) on 11 columns plus the box aspect, fitted on the train+val
clips, scores the external split (patient-level means of clips), with each column taken either
from the phantom's truth (perfect perception) or from the network (its perception): all true,
all network, and one group from the network at a time.
"""

import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from _tirads import NAMES, targets  # benchmarks/_tirads.py

GROUPS = {
    "composition": [0, 1],
    "echogenicity": [2, 3],
    "shape": [4],
    "margin": [5, 6],
    "micro": [7],
    "macro": [8],
    "rim": [9, 10],
}


def main() -> None:
    work, truth_csv, dump = sys.argv[1:4]
    clips = pd.read_csv(f"{work}/clips.csv")
    truth = pd.read_csv(truth_csv).set_index("nodule_id")
    splits = {
        s: clips[clips.split == s].reset_index(drop=True) for s in ("train", "val", "external")
    }
    net = {s: np.load(f"{dump}/aux_{s}.npy") for s in splits}
    true = {s: targets(truth, d).astype(float) for s, d in splits.items()}
    aspect = {
        s: np.log((d.y1 - d.y0) / (d.x1 - d.x0)).to_numpy()[:, None] for s, d in splits.items()
    }

    def score(from_net: list[int]) -> float:
        use = np.isin(np.arange(len(NAMES)), from_net)[None]
        x = {s: np.hstack([np.where(use, net[s], true[s]), aspect[s]]) for s in splits}
        fit_x = np.vstack([x["train"], x["val"]])
        fit_y = np.concatenate([splits["train"].label, splits["val"].label])
        model = LogisticRegression(C=0.1, max_iter=3000).fit(fit_x, fit_y)
        ext = splits["external"].assign(p=model.predict_proba(x["external"])[:, 1])
        g = ext.groupby("patient_id").agg(y=("label", "max"), p=("p", "mean"))
        return round(float(roc_auc_score(g.y, g.p)), 3)

    out = {"all_true": score([]), "all_network": score(list(range(len(NAMES))))}
    for name, cols in GROUPS.items():
        out[f"network_{name}_only"] = score(cols)
        out[f"network_all_but_{name}"] = score([k for k in range(len(NAMES)) if k not in cols])
    print(out)


if __name__ == "__main__":
    main()
