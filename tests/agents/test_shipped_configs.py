"""The shipped configs work as documented on a fresh machine."""

from __future__ import annotations

from urllib.parse import urlsplit

from agents.catalog import validate_directory
from gateway.settings import PROJECT_ROOT, Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def test_no_shipped_model_profile_posts_to_the_gateway_itself() -> None:
    catalog, issues = validate_directory(PROJECT_ROOT / "configs")
    assert catalog is not None, issues
    gateway_port = Settings.model_fields["port"].default
    for name, profile in catalog.profiles.items():
        if not profile.base_url:
            continue
        url = urlsplit(profile.base_url)
        assert not (url.hostname in LOOPBACK and url.port == gateway_port), (
            f"profile {name!r} points at {profile.base_url}, crewgate's own default address"
        )


def test_the_local_profile_is_where_ollama_serves_openai_chat() -> None:
    catalog, _ = validate_directory(PROJECT_ROOT / "configs")
    assert catalog is not None
    local = catalog.profiles["local"]
    assert local.base_url == "http://127.0.0.1:11434/v1"
    assert local.model is not None and local.model.startswith("openai/")
