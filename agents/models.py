"""Model profiles to CrewAI LLM objects."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from agents.schema import ModelProfile

__all__ = ["ModelConfigError", "make_llm"]


class ModelConfigError(RuntimeError):
    """A profile cannot be used as configured here (for example its key is not set)."""


_local = threading.local()


def make_llm(name: str, profile: ModelProfile, *, inputs: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """The LLM for one run. ``env`` supplies the variable named by ``api_key_env``.

    The offline model is built per run (it carries the run's inputs). A provider LLM
    is reused by later runs on the same thread with the same profile and key: building
    one creates two HTTP clients with their TLS contexts (~40 ms of CPU), and a reused
    one keeps its connections to the model open. One thread runs one task at a time,
    so no two runs share an instance; per-run usage is summed from the run's
    ``llm.completed`` events, not from the instance's lifetime counters.
    """
    if profile.provider == "offline":
        from agents.offline import OfflineLLM

        return OfflineLLM(model="offline", inputs=dict(inputs))
    key_value = env.get(profile.api_key_env, "") if profile.api_key_env else ""
    cache_key = (name, profile.model_dump_json(), hashlib.sha256(key_value.encode()).hexdigest())
    cache: dict[tuple[str, str, str], Any] = _local.__dict__.setdefault("llms", {})
    if cache_key not in cache:
        cache[cache_key] = _build(name, profile, env)
    return cache[cache_key]


def _build(name: str, profile: ModelProfile, env: Mapping[str, str]) -> Any:
    from crewai import LLM

    kwargs: dict[str, Any] = {
        "model": profile.model,
        "timeout": profile.timeout,
        "max_retries": profile.max_retries,
        "stream": profile.stream,
    }
    if profile.base_url:
        kwargs["base_url"] = profile.base_url
    if profile.temperature is not None:
        kwargs["temperature"] = profile.temperature
    if profile.max_tokens is not None:
        kwargs["max_tokens"] = profile.max_tokens
    if profile.api_key_env:
        key = env.get(profile.api_key_env)
        if not key:
            raise ModelConfigError(
                f"model profile '{name}' needs the environment variable {profile.api_key_env} to be set"
            )
        kwargs["api_key"] = key
    try:
        return LLM(**kwargs)
    except (ImportError, ValueError) as e:
        raise ModelConfigError(f"model profile '{name}' ({profile.model}): {e}") from e
