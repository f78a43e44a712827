"""The YAML schema: agents, crews and model profiles, as strict pydantic models.

Unknown fields are errors (``extra="forbid"``), so a typo is reported at its line
instead of being silently ignored. Cross-references between files are checked by
``agents.catalog``; this module checks each object on its own.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from agents.events import EventType

__all__ = [
    "AgentSpec",
    "AlertRoute",
    "CrewWebhook",
    "ConfigFile",
    "CrewSpec",
    "InputSpec",
    "InputType",
    "ModelProfile",
    "ModelsSpec",
    "Process",
    "StepSpec",
    "NAME_PATTERN",
    "ALERT_FIELD",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSpec(_Strict):
    """A specialist: what it is for, the tools it may call and the model it thinks with."""

    role: Text
    goal: Text
    backstory: Text
    tools: list[Name] = Field(default_factory=list)
    model: Name | None = Field(default=None, description="model profile; the default if unset")
    max_iter: int = Field(default=15, ge=1, le=100)
    max_rpm: int | None = Field(default=None, ge=1)
    max_execution_time: int | None = Field(default=None, ge=1, description="seconds")
    max_retry_limit: int = Field(default=2, ge=0, le=10)
    allow_delegation: bool = False
    respect_context_window: bool = True
    reasoning: bool = False
    cache: bool = True
    verbose: bool = False

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[str]) -> list[str]:
        dupes = sorted({t for t in tools if tools.count(t) > 1})
        if dupes:
            raise ValueError(f"tool listed more than once: {', '.join(dupes)}")
        return tools


class InputType(StrEnum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    path = "path"  # a file or directory that must exist under the allowed roots
    datetime = "datetime"  # ISO-8601; stored as UTC with a Z


class InputSpec(_Strict):
    type: InputType = InputType.string
    description: str = ""
    required: bool | None = Field(default=None, description="default: true unless a default is set")
    default: Any = None
    choices: list[str | int | float] | None = None
    max_length: int | None = Field(
        default=None, ge=1, le=1_048_576, description="longest value in characters; default 4096"
    )

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None

    @model_validator(mode="after")
    def _default_consistent(self) -> InputSpec:
        if self.required and self.default is not None:
            raise ValueError("an input with a default cannot also be required")
        if self.choices is not None and self.default is not None and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of the choices")
        return self


class Process(StrEnum):
    sequential = "sequential"
    hierarchical = "hierarchical"


class StepSpec(_Strict):
    """One unit of work (a CrewAI Task); ``context`` names earlier steps whose output it reads."""

    name: Name
    agent: Name
    description: Text
    expected_output: Text
    context: list[Name] | None = Field(
        default=None, description="earlier steps to read; unset: the previous step (CrewAI's default)"
    )
    output_schema: str | dict[str, Any] | None = Field(
        default=None, description="shape of the answer: a shipped model's name or an inline JSON Schema"
    )
    output_retries: int = Field(default=1, ge=0, le=5, description="times a bad shape is asked again")
    human_input: bool = Field(default=False, description="a person reviews the answer before the crew goes on")
    human_input_timeout_s: float | None = Field(
        default=None, gt=0, description="how long the review may wait (human_input only); unset: no limit"
    )
    on_timeout: Literal["fail", "approve"] = Field(
        default="fail", description="what a review that times out does (human_input only)"
    )

    @field_validator("output_schema")
    @classmethod
    def _known_output_schema(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        from agents.outputs import check_output_schema

        if value is not None:
            check_output_schema(value)
        return value


MAX_WEBHOOK_EVENTS = 20
ALERT_FIELD = re.compile(r"\{(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]{0,127})\}")


class CrewWebhook(_Strict):
    """A webhook every task of the crew sends (besides one its request may ask for)."""

    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]
    events: list[EventType] = Field(min_length=1, max_length=MAX_WEBHOOK_EVENTS)
    secret_env: str | None = Field(
        default=None, description="environment variable holding the signing secret (never the secret itself)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("secret", "token", "password")):
            raise ValueError("a webhook secret may not be written in YAML; name its variable with secret_env")
        return data

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(f"secret_env must be an environment variable name, not {value!r}")
        return value


class AlertRoute(_Strict):
    """Alertmanager alerts that start the crew: every ``match`` label equal; ``inputs`` are
    templates where ``{labels.NAME}`` and ``{annotations.NAME}`` stand for the alert's values."""

    match: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")], str] = Field(min_length=1)
    inputs: dict[Name, Annotated[str, StringConstraints(max_length=4096)]] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _templates(cls, inputs: dict[str, str]) -> dict[str, str]:
        for name, template in inputs.items():
            rest = ALERT_FIELD.sub("", template)
            if "{" in rest or "}" in rest:
                raise ValueError(f"input {name!r}: only {{labels.NAME}} and {{annotations.NAME}} may stand in braces")
        return inputs


class CrewSpec(_Strict):
    description: str = ""
    process: Process = Process.sequential
    manager: Name | None = Field(default=None, description="manager agent (hierarchical only)")
    manager_model: Name | None = Field(default=None, description="manager model profile")
    inputs: dict[Name, InputSpec] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(min_length=1)
    max_rpm: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0, description="whole-run time limit")
    max_attempts: int = Field(
        default=2,
        ge=1,
        le=10,
        description="runs of a task, the first included, when the process running it dies; "
        "1: a task whose runner died ends failed (interrupted)",
    )
    webhook: CrewWebhook | None = Field(default=None, description="sent for every task of this crew")
    alerts: list[AlertRoute] = Field(
        default_factory=list, max_length=50, description="Alertmanager alerts that start this crew"
    )

    @model_validator(mode="after")
    def _manager_only_hierarchical(self) -> CrewSpec:
        if self.process is Process.sequential and (self.manager or self.manager_model):
            raise ValueError("manager and manager_model apply only to process: hierarchical")
        return self

    @model_validator(mode="after")
    def _alert_inputs_declared(self) -> CrewSpec:
        for route in self.alerts:
            unknown = sorted(set(route.inputs) - set(self.inputs))
            if unknown:
                raise ValueError(f"alerts: inputs the crew does not declare: {', '.join(unknown)}")
        return self


class ModelProfile(_Strict):
    """How to reach a model. Secrets are named by environment variable, never written here."""

    provider: str = Field(default="crewai", description="'offline' or 'crewai' (any CrewAI LLM)")
    model: str | None = Field(default=None, description="CrewAI model string, e.g. openai/gpt-4o-mini")
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout: float = Field(default=60.0, gt=0, description="seconds per request")
    max_retries: int = Field(default=2, ge=0, le=10)
    stream: bool = False
    price_per_1m_input_tokens: float | None = Field(
        default=None, ge=0, le=10_000, description="USD per million prompt tokens, to price model calls; unset: 0"
    )
    price_per_1m_output_tokens: float | None = Field(
        default=None, ge=0, le=10_000, description="USD per million completion tokens, to price model calls; unset: 0"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("api_key", "apikey", "key", "token", "secret", "password"):
                if key in data:
                    raise ValueError(
                        f"'{key}' may not be written in YAML; name the environment variable "
                        "that holds it with api_key_env"
                    )
        return data

    @model_validator(mode="after")
    def _complete(self) -> ModelProfile:
        if self.provider not in ("offline", "crewai"):
            raise ValueError(f"provider must be 'offline' or 'crewai', not {self.provider!r}")
        if self.provider == "crewai" and not self.model:
            raise ValueError("a crewai profile needs 'model' (a CrewAI model string)")
        if self.api_key_env is not None and not ENV_NAME.match(self.api_key_env):
            raise ValueError(f"api_key_env must be an environment variable name, not {self.api_key_env!r}")
        if self.base_url is not None and not re.match(r"^https?://", self.base_url):
            raise ValueError("base_url must start with http:// or https://")
        if self.provider == "offline" and (self.price_per_1m_input_tokens or self.price_per_1m_output_tokens):
            raise ValueError("the offline model costs nothing: leave its prices unset (or 0)")
        return self


class ModelsSpec(_Strict):
    default: Name | None = None
    profiles: dict[Name, ModelProfile] = Field(default_factory=dict)


class ConfigFile(_Strict):
    """One YAML file: any of the three sections; files in a directory are merged."""

    agents: dict[Name, AgentSpec] = Field(default_factory=dict)
    crews: dict[Name, CrewSpec] = Field(default_factory=dict)
    models: ModelsSpec | None = None
