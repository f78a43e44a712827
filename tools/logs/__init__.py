"""Read-only log analysis tools for incident triage.

``search_logs`` finds records, ``error_signatures`` groups errors by masked message and
marks them new or pre-existing, ``error_timeline`` counts errors over time and finds
the onset. Parsing (JSON lines, timestamped text, .gz, directories) lives in ``_parse``.
"""

from tools.logs._parse import LEVELS, ParseStats, Record, iter_records, parse_ts
from tools.logs._signatures import Signature, SignatureIndex, group_records, template
from tools.logs._tools import ErrorSignaturesTool, ErrorTimelineTool, SearchLogsTool

LOG_TOOLS = (SearchLogsTool, ErrorSignaturesTool, ErrorTimelineTool)

__all__ = [
    "LEVELS",
    "LOG_TOOLS",
    "ErrorSignaturesTool",
    "ErrorTimelineTool",
    "ParseStats",
    "Record",
    "SearchLogsTool",
    "Signature",
    "SignatureIndex",
    "group_records",
    "iter_records",
    "parse_ts",
    "template",
]
