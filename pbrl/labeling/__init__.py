"""Human labels through a web page: the label queue and assignments, segment videos rendered
ahead of the annotator, the FastAPI app and its server, agreement statistics, export/import.

The web stack is an extra: ``pip install -e '.[label]'`` (FastAPI, uvicorn, imageio-ffmpeg).
See docs/labeling.md.
"""
