"""Why a run failed, as a stable code and a sentence a person can act on."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["describe_failure"]


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(code, message) for an exception raised by a run; never leaks a traceback."""
    for item in _chain(error):
        names = _names(item)
        text = str(item).strip() or type(item).__name__
        if "RunCancelled" in names:
            return "cancelled", getattr(item, "reason", "cancelled")
        if "BadOutputError" in names:  # the model kept answering in the wrong shape
            return "bad_output", text
        if "ModelConfigError" in names:
            return "model_config", text
        if names & {"APITimeoutError", "TimeoutException", "ReadTimeout", "Timeout"} or ("TimeoutError" in names):
            return "model_timeout", f"the model did not answer in time (retries exhausted): {text}"
        if "RateLimitError" in names:
            return "model_rate_limited", f"the model kept refusing with HTTP 429 after retries: {text}"
        if "APIStatusError" in names:
            status = getattr(item, "status_code", "?")
            return "model_error", f"the model returned HTTP {status} after retries: {text}"
        if "APIConnectionError" in names:
            return "model_unreachable", f"could not reach the model: {text}"
        if "InputError" in names:
            return "bad_input", text
    return "crew_error", f"{type(error).__name__}: {str(error).strip()[:500]}"
