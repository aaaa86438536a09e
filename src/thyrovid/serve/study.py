"""Reading mode (`thyrovid serve RUN --study CASES --readers-out READERS_CSV`): Table 4's study.

CASES is a cohort.csv (`thyrovid.cohort.schema`): a case is a patient (its id is what
`thyrovid readers --model` matches to the model's patient-level predictions), its truth the
patient's label (malignant when any nodule is), its videos and key-frame boxes those of its
rows. A reader gives a name and a group; the cases come in an order shuffled with
`--seed` and the reader's name (each reader their own order, the same one after a reload).
For each case the reader scores it without the model ("unaided": a probability or TI-RADS
1-5, and a decision), then sees the model's output and scores it again ("aided"). The server
holds the model's output back until the unaided reading is saved.

Each reading is one readers.csv row (reader, group, case, modality, truth, score, decision),
written through `thyrovid.serve.tables.LockedTable`; the file is the state, so a closed tab
resumes at the first reading it lacks. When every reader finishes, the file is fully crossed
and `thyrovid readers READERS_CSV` reads it as it is.
"""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path

from thyrovid.errors import UserError
from thyrovid.serve.annotate import text_field
from thyrovid.serve.tables import LockedTable

READER_COLUMNS = ("reader", "group", "case", "modality", "truth", "score", "decision")
MODALITIES = ("unaided", "aided")
SCALES = {"probability": "P(malignant), 0 to 1", "tirads": "TI-RADS category, 1 to 5"}


class Study:
    """The cases of a reading study and the readers.csv they are written to.

    Args:
        cases_csv: a cohort.csv of the study's cases.
        readers_csv: where the readings go (created when missing; a started file resumes).
        seed: the order's seed.
        scale: "probability" or "tirads": what a score is.
    """

    def __init__(self, cases_csv, readers_csv, seed: int = 0, scale: str = "probability"):
        from thyrovid.cohort.schema import read_cohort

        if scale not in SCALES:
            raise UserError(f"--score-scale {scale!r}: one of {', '.join(SCALES)}")
        cohort = read_cohort(cases_csv)
        if cohort.problems:
            raise UserError(f"--study {cases_csv}: {cohort.problems[0]}")
        if cohort.rows.empty:
            raise UserError(f"--study {cases_csv}: no cases")
        self.scale, self.seed = scale, int(seed)
        self.cases: dict[str, dict] = {}
        for row in cohort.rows.itertuples():
            case = self.cases.setdefault(str(row.patient_id), {"truth": 0, "videos": {}})
            case["truth"] = max(case["truth"], int(row.label))
            pairs = case["videos"].setdefault(str(row.video_path), [])
            pairs.append((int(row.frame), (row.x0, row.y0, row.x1, row.y1)))
        self.table = LockedTable(readers_csv, READER_COLUMNS)
        self._model: dict[str, dict] = {}
        self._model_lock = threading.Lock()

    # -------------------------------------------------------------- the order, the state
    def order(self, reader: str) -> list[str]:
        """The cases in this reader's order: shuffled by (seed, reader), stable across reloads."""
        digest = hashlib.sha256(f"{self.seed}\0{reader}".encode()).hexdigest()
        cases = sorted(self.cases)
        random.Random(int(digest[:16], 16)).shuffle(cases)
        return cases

    def _readings(self, reader: str) -> list[dict]:
        return [r for r in self.table.rows() if r.get("reader") == reader]

    def state(self, reader: str, group: str | None = None) -> dict:
        """Where `reader` is: the next case and step ("unaided", "aided" or "done")."""
        done = {(r["case"], r["modality"]) for r in self._readings(reader)}
        order = self.order(reader)
        for position, case in enumerate(order):
            for modality in MODALITIES:
                if (case, modality) not in done:
                    return {"reader": reader, "group": group, "n_cases": len(order),
                            "position": position + 1, "case": case, "step": modality,
                            "completed": position, "scale": self.scale}  # fmt: skip
        return {"reader": reader, "group": group, "n_cases": len(order), "position": None,
                "case": None, "step": "done", "completed": len(order), "scale": self.scale}  # fmt: skip

    def start(self, body: dict) -> dict:
        """A reader (name, group) starts or resumes; their group must stay the same."""
        reader = text_field(body, "reader")
        group = text_field(body, "group", required=False)
        rows = self._readings(reader)
        known = {r.get("group", "") for r in rows}
        if rows and known != {group}:
            raise UserError(
                f"group: reader {reader} is already in group {sorted(known)[0]!r} in readers.csv"
            )
        return self.state(reader, group)

    # -------------------------------------------------------------- a reading
    def score(self, body: dict) -> dict:
        """Save one reading (the next one the reader owes) and return the new state."""
        reader = text_field(body, "reader")
        group = text_field(body, "group", required=False)
        case = text_field(body, "case")
        modality = text_field(body, "modality")
        if case not in self.cases:
            raise UserError(f"case: {case!r} is not a case of this study")
        if modality not in MODALITIES:
            raise UserError(f"modality: {modality!r} is not unaided or aided")
        score = self._score(body.get("score"))
        decision = body.get("decision")
        if decision not in (0, 1, "0", "1") or isinstance(decision, bool):
            raise UserError(f"decision: {decision!r} is not 0 (benign) or 1 (malignant)")
        row = {"reader": reader, "group": group, "case": case, "modality": modality,
               "truth": str(self.cases[case]["truth"]), "score": f"{score:g}",
               "decision": str(int(decision))}  # fmt: skip

        def edit(rows: list[dict]) -> list[dict]:
            mine = [r for r in rows if r.get("reader") == reader]
            if mine and {r.get("group", "") for r in mine} != {group}:
                raise UserError(f"group: reader {reader} is already in another group")
            done = {(r["case"], r["modality"]) for r in mine}
            if (case, modality) in done:
                raise UserError(
                    f"modality: case {case} already has a {modality} reading by {reader}"
                )
            if modality == "aided" and (case, "unaided") not in done:
                raise UserError(f"modality: score case {case} unaided (without the model) first")
            return [*rows, row]

        self.table.change(edit)
        return self.state(reader, group)

    def _score(self, value) -> float:
        try:
            score = float(value)
        except (TypeError, ValueError):
            score = float("nan")
        if self.scale == "tirads":
            if not (score == score and score.is_integer() and 1 <= score <= 5):
                raise UserError(f"score: {value!r} is not a TI-RADS category 1 to 5")
        elif not 0.0 <= score <= 1.0:
            raise UserError(f"score: {value!r} is not a probability between 0 and 1")
        return score

    # -------------------------------------------------------------- the model's output
    def may_see_model(self, reader: str, case: str) -> None:
        """UserError unless `reader` has saved the unaided reading of `case`."""
        if case not in self.cases:
            raise UserError(f"case: {case!r} is not a case of this study")
        done = {(r["case"], r["modality"]) for r in self._readings(reader)}
        if (case, "unaided") not in done:
            raise UserError(f"case: score case {case} without the model first")

    def model_output(self, case: str, predict) -> dict:
        """The model's output of a case (computed once): per video, and the case's mean.

        Args:
            predict: (video path, [(frame, box)]) -> the prediction dict (the server's
                locked `Predictor.predict`).
        """
        with self._model_lock:
            if case not in self._model:
                videos = []
                for path, pairs in self.cases[case]["videos"].items():
                    videos.append((Path(path), predict(Path(path), pairs)))
                self._model[case] = {"videos": videos}
            return self._model[case]
