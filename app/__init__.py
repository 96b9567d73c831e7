"""FakeTagger desktop GUI (PySide6). Qt glue only: every real operation is an engine call."""
