"""The ``faketagger`` command line (protect, verify, keys, demo; ``bench`` is handed to
engine.bench). A thin front end: the work happens in engine.run and engine.pipeline.
"""
