"""The API's routes, one ``APIRouter`` per family, each a thin layer: read
the parameters (``deps.py``), call the reads (``reads/``), answer with the
models (``models.py``)."""
