"""Config validation and the reload status."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.deps import ConfigsDep, scoped
from gateway.api.errors import ApiError
from gateway.api.schemas import ConfigStatus, ConfigValidateRequest, ConfigValidateResult
from gateway.configs import ValidationBusy

router = APIRouter(prefix="/v1/configs", tags=["configs"], dependencies=[scoped("configs:read")])


@router.post(
    "/validate",
    response_model=ConfigValidateResult,
    responses={503: {"description": "validation did not finish within its time budget"}},
)
async def validate(configs: ConfigsDep, body: ConfigValidateRequest | None = None) -> ConfigValidateResult:
    """Check proposed files (nothing is applied), or the gateway's config directory as it is now.

    Submitted files are checked in memory (nothing is written), in a worker process
    with a time budget; errors name the files as submitted.
    """
    files = body.files if body is not None else None
    try:
        version, errors = await configs.check(files)
    except ValidationBusy as e:
        raise ApiError(503, "validation_timeout", str(e)) from None
    return ConfigValidateResult(ok=version is not None, version=version, errors=errors)


@router.get("/status", response_model=ConfigStatus)
async def config_status(configs: ConfigsDep) -> ConfigStatus:
    """The directory now (valid or not, with its errors), the active version, and recent reloads."""
    return ConfigStatus(**configs.status())
