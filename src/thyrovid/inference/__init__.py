"""Inference: the clips of a work folder in batches (`batch`), soft voting clip -> patient
(`voting`), the clips of a new video (`newvideo`), `thyrovid predict` (`predict`) and
`thyrovid export` (`export`).
"""
