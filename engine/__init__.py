"""FakeTagger engine: everything that is not GUI. Never imports Qt (enforced by import-linter)."""

__version__ = "0.1.0"
