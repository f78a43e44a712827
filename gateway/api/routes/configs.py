"""Config validation and the reload status."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from agents.catalog import validate_directory
from gateway.api.deps import ConfigsDep
from gateway.api.schemas import ConfigStatus, ConfigValidateRequest, ConfigValidateResult
from gateway.configs import validate_files

router = APIRouter(prefix="/v1/configs", tags=["configs"])


@router.post("/validate", response_model=ConfigValidateResult)
async def validate(configs: ConfigsDep, body: ConfigValidateRequest | None = None) -> ConfigValidateResult:
    """Check proposed files (nothing is applied), or the gateway's config directory as it is now."""
    if body is not None and body.files is not None:
        catalog, issues = await asyncio.to_thread(validate_files, body.files)
    else:
        catalog, issues = await asyncio.to_thread(validate_directory, configs.directory)
    return ConfigValidateResult(
        ok=catalog is not None, version=catalog.version if catalog else None, errors=[i.as_dict() for i in issues]
    )


@router.get("/status", response_model=ConfigStatus)
async def config_status(configs: ConfigsDep) -> ConfigStatus:
    """The active version, and the errors of the last edit that was refused."""
    return ConfigStatus(**configs.status())
