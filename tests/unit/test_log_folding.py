"""uvicorn's "Invalid HTTP request received." folded per client address."""

from __future__ import annotations

import logging

from dockyard.observability import FoldRepeats


def record(client: str, msg: str = "Invalid HTTP request received.") -> logging.LogRecord:
    line = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, msg, None, None)
    line.fields = {"client": client}
    return line


def test_one_line_per_client_per_window_and_the_count_of_the_rest() -> None:
    fold = FoldRepeats(window=0.2)
    assert fold.filter(record("10.0.0.1:1000"))
    assert not fold.filter(record("10.0.0.1:1001"))
    assert not fold.filter(record("10.0.0.1:1002"))
    assert fold.filter(record("[::1]:1003"))  # another client: its own line
    assert fold.filter(record("10.0.0.1:1004", "Unsupported upgrade request."))  # not folded
    import time

    time.sleep(0.25)
    later = record("10.0.0.1:1005")
    assert fold.filter(later)
    assert later.fields["folded"] == 2
    assert "HTTPS first" in later.fields["hint"]
