"""`thyrovid serve`: a local web page and JSON API for predictions (FastAPI, optional extra).

`thyrovid.serve.serve.create_app(run_dir)` builds the app; `thyrovid serve RUN` runs it with
uvicorn on 127.0.0.1. Install the extra with `pip install thyrovid[serve]`.
"""
