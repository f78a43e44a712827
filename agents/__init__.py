"""Crews from YAML: schema, validation, assembly and models.

CrewAI phones home by default (telemetry, tracing). crewgate turns both off before
any CrewAI import made through this package unless the operator set them.
"""

import os as _os

for _name, _value in (
    ("CREWAI_DISABLE_TELEMETRY", "true"),
    ("CREWAI_DISABLE_TRACKING", "true"),
    ("OTEL_SDK_DISABLED", "true"),
    ("CREWAI_TRACING_ENABLED", "false"),
):
    _os.environ.setdefault(_name, _value)
