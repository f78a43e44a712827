"""Crews and agents of the active config."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agents.catalog import Catalog
from agents.errors import UnknownCrewError
from agents.outputs import json_schema_of
from agents.schema import CrewSpec, InputType
from gateway.api.deps import ActiveCatalogDep, scoped
from gateway.api.errors import ApiError
from gateway.api.schemas import AgentPublic, CrewPublic, CrewStep

# tasks:read: a client that submits or reads tasks needs the crews' inputs and agents
router = APIRouter(
    tags=["crews"], responses={503: {"description": "no config is loaded"}}, dependencies=[scoped("tasks:read")]
)

_JSON_TYPES = {
    InputType.string: {"type": "string"},
    InputType.integer: {"type": "integer"},
    InputType.number: {"type": "number"},
    InputType.boolean: {"type": "boolean"},
    InputType.path: {"type": "string", "format": "path"},
    InputType.datetime: {"type": "string", "format": "date-time"},
}


def input_schema(spec: CrewSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, item in spec.inputs.items():
        prop: dict[str, Any] = dict(_JSON_TYPES[item.type])
        if item.description:
            prop["description"] = item.description
        if item.default is not None:
            prop["default"] = item.default
        if item.choices is not None:
            prop["enum"] = item.choices
        properties[name] = prop
    required = [n for n, i in spec.inputs.items() if i.is_required]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _crew(catalog: Catalog, name: str, spec: CrewSpec) -> CrewPublic:
    return CrewPublic(
        name=name,
        description=spec.description,
        process=spec.process.value,
        steps=[
            CrewStep(
                name=s.name,
                agent=s.agent,
                context=s.context,
                output_schema=json_schema_of(s.output_schema) if s.output_schema is not None else None,
            )
            for s in spec.steps
        ],
        inputs=input_schema(spec),
        config_version=catalog.version,
    )


@router.get("/v1/crews", response_model=list[CrewPublic])
async def list_crews(catalog: ActiveCatalogDep) -> list[CrewPublic]:
    return [_crew(catalog, name, spec) for name, spec in sorted(catalog.crews.items())]


@router.get("/v1/crews/{name}", response_model=CrewPublic, responses={404: {"description": "unknown crew"}})
async def get_crew(name: str, catalog: ActiveCatalogDep) -> CrewPublic:
    try:
        spec = catalog.crew(name)
    except UnknownCrewError as e:
        raise ApiError(404, "unknown_crew", str(e), {"known": e.known}) from e
    return _crew(catalog, name, spec)


@router.get("/v1/agents", response_model=list[AgentPublic])
async def list_agents(catalog: ActiveCatalogDep) -> list[AgentPublic]:
    return [
        AgentPublic(name=name, role=a.role, goal=a.goal, tools=a.tools, model=a.model or catalog.default_profile)
        for name, a in sorted(catalog.agents.items())
    ]
