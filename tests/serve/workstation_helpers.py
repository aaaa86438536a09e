"""Plain helpers of the workstation tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

# Identifiers planted in every DICOM of the --root folder: none may reach a page, an answer or
# a written file.
PLANTED = {
    "PatientName": "Plantedname^Secretia",
    "PatientID": "PLANTED-ID-7731",
    "PatientBirthDate": "19450307",
    "InstitutionName": "Planted General Hospital",
    "ReferringPhysicianName": "Dr^Plantedreferrer",
    "AccessionNumber": "ACC-PLANTED-55",
    "OtherPatientIDs": "PLANTED-OTHER-2",
}


def plant(source: Path, target: Path) -> Path:
    """Copy a DICOM with the PLANTED identifiers written into its header."""
    import pydicom

    ds = pydicom.dcmread(source)
    for key, value in PLANTED.items():
        setattr(ds, key, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target


def make_app(station, **overrides):
    from thyrovid.serve.serve import create_app

    options = dict(
        root=station["root"], annotate=station["cohort_csv"], study=station["cases"],
        readers_out=station["readers_csv"], seed=3,
    )  # fmt: skip
    options.update(overrides)
    return create_app(station["run"], **options)
