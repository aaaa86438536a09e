"""Evaluation: `thyrovid evaluate` (`evaluate`) and its metrics (`metrics`), `thyrovid compare`
(`compare`) and `thyrovid stats` (`stats`, the statistics of `thyrovid.stats` on a user's CSV).
"""
