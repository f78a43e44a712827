"""Model profiles to CrewAI LLM objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.schema import ModelProfile

__all__ = ["ModelConfigError", "make_llm"]


class ModelConfigError(RuntimeError):
    """A profile cannot be used as configured here (for example its key is not set)."""


def make_llm(name: str, profile: ModelProfile, *, inputs: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """A fresh LLM for one run. ``env`` supplies the variable named by ``api_key_env``."""
    if profile.provider == "offline":
        from agents.offline import OfflineLLM

        return OfflineLLM(model="offline", inputs=dict(inputs))

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
