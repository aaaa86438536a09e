"""thyrovid: malignancy of calcified thyroid nodules from ultrasound cine clips."""

__version__ = "0.1.0"
