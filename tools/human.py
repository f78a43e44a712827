"""``ask_human``: an agent asks a person a question and works on with the answer.

The tool does not wait. The run's question desk (``agents.hitl``) either holds the
answer to this very call (same step, same place among the step's questions, same
text) or stops the run with a BaseException, which CrewAI's ``except Exception``
blocks let through; the run is resumed later, from the start of the step, with the
answer stored. CrewAI's tool cache must never answer a question, so it is off here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from tools._base import ToolError
from tools._result import FactsSink, ToolResult, clip

__all__ = ["AskHumanArgs", "AskHumanTool", "QuestionDesk", "MAX_QUESTION_CHARS"]

MAX_QUESTION_CHARS = 2000
_SUMMARY_CHARS = 1000


@runtime_checkable
class QuestionDesk(Protocol):
    """Where a run's questions go: the stored answer, or an exception that pauses the run."""

    def ask(self, question: str) -> str: ...


class AskHumanArgs(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="One clear question for a person, with what you need to know and why",
    )


class AskHumanTool(BaseTool):
    name: str = "ask_human"
    description: str = (
        "Ask a person (the on-call developer) a question when the evidence you can read does not "
        "settle it. The run waits for the answer; ask only what the other tools cannot tell you."
    )
    args_schema: type[BaseModel] = AskHumanArgs
    model_config = ConfigDict(arbitrary_types_allowed=True)

    roots: tuple[Any, ...] = Field(default=(), exclude=True)  # unused: it reads nothing
    facts_sink: FactsSink | None = Field(default=None, exclude=True)
    desk: QuestionDesk | None = Field(default=None, exclude=True)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        # an answer is never reused from CrewAI's cache: each call is a question of its own
        self.cache_function = _never

    def _run(self, question: str, **_: Any) -> str:
        if self.desk is None:
            raise ToolError("no person can be asked in this run")
        answer = self.desk.ask(question)
        result = ToolResult(
            tool=self.name,
            params={"question": question},
            summary=clip(f"A person answered: {answer}", _SUMMARY_CHARS),
            data={"question": question, "answer": answer},
            facts={"human_answer": answer},
        )
        if self.facts_sink is not None:
            self.facts_sink.record(result)
        return result.render(12_000)


def _never(_arguments: Any = None, _result: Any = None) -> bool:
    return False
