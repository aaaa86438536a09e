"""Explanations, `thyrovid cam`: Grad-CAM and localisation scores (`gradcam`), heatmap overlays
and their files (`overlay`), the command (`cam`).
"""
