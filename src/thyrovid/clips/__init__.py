"""Clips: `thyrovid extract` turns cohort.csv rows into the clip cache of a work folder.

`geometry` (window and box of one clip), `cache` (cutting and the atomic .npy cache, run in
worker processes), `extract` (the command: plan, validate, write WORK/clips.csv), `dataset`
(WORK/clips.csv and the cached clips as a torch Dataset, the one normalisation).
"""
