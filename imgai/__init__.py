"""imgai: a model workshop for image AI.

The package is importable without torch: heavy libraries are imported inside the functions
that need them, so `python app.py` and `imgai tag` start fast.
"""

__version__ = "0.1.0"
