"""The phantom: a synthetic multi-center cohort of thyroid ultrasound cine clips with known truth.

`thyrovid synth OUT_DIR` (see `cli`) -> `cohort.synthesize`. Modules, in the order data flows:
`anatomy` (latent features, true malignancy model, TI-RADS), `profiles` (centers),
`volume` (3D nodule geometry, scatterer field), `tissue` (neck anatomy), `sweep` (probe motion),
`render` (B-mode frames and masks), `dicomwriter` (burned-in text, DICOM files),
`video` (one nodule's clips, key frames, boxes, masks), `cohort` (plan, splits, CSVs, summary),
`readers` (simulated reader study).
"""
