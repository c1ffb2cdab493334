"""One description of an error for every face; errors of other threads reach the log."""

from __future__ import annotations

import threading
from pathlib import Path

from desktop_app import logs
from desktop_app.errors import InternalError, RequestError, UserError, as_internal, describe


def test_a_user_error_is_described_as_it_is() -> None:
    description = describe(RequestError("the text is empty; type something"))
    assert description == type(description)("the text is empty; type something", internal=False)


def test_an_unexpected_error_is_logged_and_points_at_the_log() -> None:
    log_path = logs.configure_logging()
    try:
        {}["missing"]
    except KeyError as exc:
        description = describe(exc)
    assert description.internal
    assert description.message == f"internal error (KeyError: 'missing'); details in {log_path}"
    text = Path(log_path).read_text(encoding="utf-8")
    assert "Traceback" in text and "KeyError: 'missing'" in text


def test_internal_errors_are_not_user_errors() -> None:
    wrapped = as_internal(ZeroDivisionError("division by zero"))
    assert isinstance(wrapped, InternalError) and not isinstance(wrapped, UserError)
    assert describe(wrapped).internal and "ZeroDivisionError" in describe(wrapped).message
    kept = RequestError("bad")
    assert as_internal(kept) is kept


def test_an_error_in_another_thread_goes_to_the_log() -> None:
    log_path = logs.configure_logging()
    logs.log_thread_errors()

    def fails() -> None:
        raise ValueError("raised in a helper thread")

    thread = threading.Thread(target=fails, name="helper")
    thread.start()
    thread.join()
    text = Path(log_path).read_text(encoding="utf-8")
    assert "unhandled error in thread helper" in text and "raised in a helper thread" in text
