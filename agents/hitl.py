"""Human in the loop: a run pauses for a person and resumes later from a checkpoint.

A run pauses in two ways, both with ``InputNeeded`` (a BaseException, so CrewAI's
``except Exception`` blocks let it through):

* review: a step with ``human_input: true`` finished; its answer waits for a person,
  who approves it (the step counts as finished) or sends feedback (the step runs
  again, seeing its earlier conversation, its answer and the feedback, as in CrewAI's
  own feedback loop, and asks for review again);
* question: an agent called the ``ask_human`` tool. The step runs again from its start
  once the answer is stored; the same call (same step, same place among the step's
  questions, same text) then gets the stored answer instead of pausing.

The checkpoint is plain JSON data: the finished steps' answers, the run's state (facts
ledger, evidence, validated step outputs) as the next step starts, the stored answers,
a step to re-run with feedback, and what the run waits for. CrewAI resumes at the
first task without an output (``Crew._get_execution_start_index`` once
``checkpoint_kickoff_event_id`` is set), with prompts identical to an uninterrupted run.

A checkpoint comes back from a store: it is checked for shape and bounds on the way
in (``ValueError`` when it is not one of ours), never executed.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, ValidationError

from agents.schema import NAME_PATTERN, CrewSpec
from tools._result import clip, printable

__all__ = [
    "Answer",
    "Checkpoint",
    "InputKind",
    "InputNeeded",
    "InputRequest",
    "QuestionAsked",
    "QuestionDesk",
    "check_answer",
    "feedback_message",
    "load_checkpoint",
    "resume_checkpoint",
]

CHECKPOINT_VERSION: Literal[1] = 1
MAX_ANSWER_CHARS = 8000  # a person's feedback or answer
MAX_QUESTION_CHARS = 2000
MAX_RAW_CHARS = 100_000  # a step's answer kept for the steps after it
MAX_MESSAGE_CHARS = 16_000  # one message of a conversation kept for a re-run
MAX_MESSAGES = 120
MAX_CHECKPOINT_BYTES = 4_000_000
MAX_OUTPUT_SHOWN = 64_000  # a step's answer shown to the person reviewing it


class InputKind(StrEnum):
    review = "review"
    question = "question"


@dataclass(frozen=True)
class InputRequest:
    """What the run needs from a person."""

    kind: InputKind
    step: str  # the step that asked
    prompt: str  # review: "Review the answer of step X (…)"; question: the agent's question
    output: str | None  # review: the step's answer (shown to the person); question: None
    timeout_s: float | None  # the step's human_input_timeout_s (reviews); None for questions
    on_timeout: str  # "fail" | "approve" (questions: "fail")


@dataclass(frozen=True)
class Answer:
    approve: bool | None = None
    feedback: str | None = None
    answer: str | None = None


class InputNeeded(BaseException):  # noqa: N818 - a control-flow signal, like RunCancelled
    """Raised out of ``run_crew`` when the run pauses for a person."""

    def __init__(self, request: InputRequest, checkpoint: dict[str, Any]) -> None:
        self.request = request
        self.checkpoint = checkpoint  # JSON-serialisable, bounded: everything needed to resume
        super().__init__(f"{request.kind} needed at step '{request.step}'")


class QuestionAsked(BaseException):  # noqa: N818 - a control-flow signal
    """Raised by the ``ask_human`` tool (through the desk) for a question with no stored answer."""

    def __init__(self, step: str, index: int, question: str) -> None:
        self.step = step
        self.index = index
        self.question = question
        super().__init__(f"question at step '{step}'")


# --- the checkpoint's shape ------------------------------------------------------------------

StepName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Raw = Annotated[str, StringConstraints(max_length=MAX_RAW_CHARS)]
PersonText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ANSWER_CHARS)]
Question = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS)]
ShortText = Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Message(_Data):
    role: Literal["system", "user", "assistant", "tool"]
    content: ShortText | None = None
    tool_calls: list[dict[str, JsonValue]] | None = Field(default=None, max_length=50)
    tool_call_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class Done(_Data):
    step: StepName
    raw: Raw


class LedgerEntry(_Data):
    kind: Literal["tool", "answer"]
    step: StepName | None
    facts: dict[str, JsonValue] = Field(max_length=200)
    tool: Annotated[str, StringConstraints(max_length=100)] | None = None
    params: dict[str, JsonValue] | None = Field(default=None, max_length=50)
    summary: ShortText | None = None


class RunState(_Data):
    ledger: list[LedgerEntry] = Field(default_factory=list, max_length=2000)
    evidence: dict[str, JsonValue] = Field(default_factory=dict, max_length=50)
    outputs: dict[StepName, dict[str, JsonValue]] = Field(default_factory=dict, max_length=100)


class Rerun(_Data):
    """The next step runs again: its earlier conversation, its answer, then the feedback."""

    step: StepName
    messages: list[Message] = Field(max_length=MAX_MESSAGES)
    answer: Raw
    feedback: PersonText


class StoredAnswer(_Data):
    step: StepName
    index: int = Field(ge=0, le=1000)
    question: Question
    answer: PersonText


class Pending(_Data):
    """What the paused run waits for."""

    kind: Literal["review", "question"]
    step: StepName
    raw: Raw | None = None  # review: the answer under review
    messages: list[Message] = Field(default_factory=list, max_length=MAX_MESSAGES)  # review: its conversation
    index: int | None = Field(default=None, ge=0, le=1000)  # question: its place among the step's questions
    question: Question | None = None


class Checkpoint(_Data):
    v: Literal[1]
    crew: StepName
    done: list[Done] = Field(default_factory=list, max_length=100)  # finished steps, in order
    state: RunState  # the run's state as the next step starts
    rerun: Rerun | None = None
    answers: list[StoredAnswer] = Field(default_factory=list, max_length=100)
    pending: Pending | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def load_checkpoint(data: Any, spec: CrewSpec | None = None, crew_name: str | None = None) -> Checkpoint:
    """``data`` checked as one of our checkpoints (and against the crew, when given); else ValueError."""
    try:
        size = len(json.dumps(data, ensure_ascii=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"corrupt checkpoint: not JSON data ({type(e).__name__})") from None
    if size > MAX_CHECKPOINT_BYTES:
        raise ValueError(f"corrupt checkpoint: {size} bytes, more than the limit of {MAX_CHECKPOINT_BYTES}")
    try:
        checkpoint = Checkpoint.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ValueError(f"corrupt checkpoint: {where}: {first['msg']} ({e.error_count()} problem(s))") from None
    if spec is not None:
        _check_against(checkpoint, spec, crew_name)
    return checkpoint


def _check_against(checkpoint: Checkpoint, spec: CrewSpec, crew_name: str | None) -> None:
    """Steps in the checkpoint are the crew's, finished ones a prefix of its steps, in order."""
    names = [s.name for s in spec.steps]
    if crew_name is not None and checkpoint.crew != crew_name:
        raise ValueError(f"checkpoint is for crew '{checkpoint.crew}', not '{crew_name}'")
    done = [d.step for d in checkpoint.done]
    if done != names[: len(done)] or len(done) > len(names):
        raise ValueError(f"checkpoint's finished steps {done} are not the first steps of the crew ({names})")
    following = names[len(done)] if len(done) < len(names) else None
    if checkpoint.rerun is not None and checkpoint.rerun.step != following:
        raise ValueError(f"checkpoint re-runs step '{checkpoint.rerun.step}', but the next step is {following!r}")
    pending = checkpoint.pending
    if pending is not None and pending.step != following:
        raise ValueError(f"checkpoint waits at step '{pending.step}', but the next step is {following!r}")
    unknown = sorted({a.step for a in checkpoint.answers} - set(names))
    unknown += sorted({e.step for e in checkpoint.state.ledger if e.step is not None} - set(names))
    unknown += sorted(set(checkpoint.state.outputs) - {s.name for s in spec.steps if s.output_schema is not None})
    if unknown:
        raise ValueError(f"checkpoint names step(s) this crew does not have: {', '.join(dict.fromkeys(unknown))}")


# --- answering -------------------------------------------------------------------------------


def check_answer(request: InputRequest, answer: Answer) -> str | None:
    """None when ``answer`` fits ``request``, else why not.

    review: approve=true, or feedback (non-empty, ≤ 8000 chars); not answer.
    question: answer (non-empty, ≤ 8000 chars) only.
    """
    if request.kind is InputKind.question:
        if answer.approve is not None or answer.feedback is not None:
            return "a question takes an answer, not approve or feedback"
        return _text_problem("answer", answer.answer)
    if answer.answer is not None:
        return "a review takes approve: true or feedback, not answer"
    if answer.approve is not None and answer.feedback is not None:
        return "give either approve: true or feedback, not both"
    if answer.approve is True:
        return None
    if answer.approve is False:
        return "approve: false is not an answer; send feedback to have the step revised"
    return _text_problem("feedback", answer.feedback)


def _text_problem(name: str, text: str | None) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return f"{name} must be non-empty text"
    if len(text) > MAX_ANSWER_CHARS:
        return f"{name} is longer than {MAX_ANSWER_CHARS} characters"
    return None


def resume_checkpoint(checkpoint: dict[str, Any], request: InputRequest, answer: Answer) -> dict[str, Any]:
    """The checkpoint the next run starts from.

    review approved: the step counts as finished with its output; feedback: the step runs
    again with the feedback (and asks for review again); question: the answer is stored
    for that ask_human call. ValueError for a corrupt checkpoint, a request it does not
    wait for, or an answer that does not fit.
    """
    cp = load_checkpoint(checkpoint)
    pending = cp.pending
    if pending is None or pending.kind != request.kind or pending.step != request.step:
        raise ValueError(f"the checkpoint does not wait for a {request.kind} at step '{request.step}'")
    problem = check_answer(request, answer)
    if problem:
        raise ValueError(problem)
    if pending.kind == InputKind.question:
        assert pending.index is not None and pending.question is not None and answer.answer is not None
        stored = StoredAnswer(step=pending.step, index=pending.index, question=pending.question, answer=answer.answer)
        kept = [a for a in cp.answers if (a.step, a.index) != (stored.step, stored.index)]
        return cp.model_copy(update={"answers": [*kept, stored], "pending": None}).dump()
    raw = pending.raw or ""
    if answer.approve:
        done = [*cp.done, Done(step=pending.step, raw=raw)]
        answers = [a for a in cp.answers if a.step != pending.step]
        return cp.model_copy(update={"done": done, "answers": answers, "rerun": None, "pending": None}).dump()
    assert answer.feedback is not None
    rerun = Rerun(step=pending.step, messages=pending.messages, answer=raw, feedback=answer.feedback)
    return cp.model_copy(update={"rerun": rerun, "pending": None}).dump()


# --- during a run ----------------------------------------------------------------------------


class QuestionDesk:
    """The run's stored answers to ``ask_human`` calls; a call without one pauses the run."""

    def __init__(self, answers: Iterable[StoredAnswer] = ()) -> None:
        self._lock = threading.Lock()
        self._answers = list(answers)
        self._step: str | None = None
        self._asked = 0

    def store(self, answers: Iterable[StoredAnswer]) -> None:
        with self._lock:
            self._answers = list(answers)

    def enter(self, step: str | None) -> None:
        """The step now running (again): its questions are counted from 0."""
        with self._lock:
            self._step = step
            self._asked = 0

    def ask(self, question: str) -> str:
        with self._lock:
            step, index = self._step, self._asked
            self._asked += 1
        for stored in self._answers:
            if (stored.step, stored.index, stored.question) == (step, index, question):
                return stored.answer
        raise QuestionAsked(step or "", index, question)


def review_prompt(step: str, role: str) -> str:
    return (
        f"Review the answer of step '{step}' ({clip(printable(role), 200)}): approve it to go on, "
        "or send feedback and the step runs again with it."
    )


def feedback_message(feedback: str) -> dict[str, Any]:
    """The feedback as CrewAI's own feedback loop puts it in front of the model."""
    from crewai.utilities.i18n import I18N_DEFAULT
    from crewai.utilities.message_utils import format_message_for_llm

    text = I18N_DEFAULT.slice("feedback_instructions").format(feedback=feedback)
    return dict(format_message_for_llm(text))


def feedback_pattern() -> re.Pattern[str]:
    """Matches a feedback message's text; group ``feedback`` is what the person wrote."""
    from crewai.utilities.i18n import I18N_DEFAULT

    before, _, after = I18N_DEFAULT.slice("feedback_instructions").partition("{feedback}")
    return re.compile(re.escape(before) + r"(?P<feedback>.*)" + re.escape(after) + r"\Z", re.DOTALL)


def conversation(rerun: Rerun) -> list[dict[str, Any]]:
    """The messages a re-run step starts with: its earlier conversation, its answer, the feedback."""
    messages = [m.model_dump(mode="json", exclude_none=True) for m in rerun.messages]
    last = messages[-1] if messages else {}
    if not (last.get("role") == "assistant" and last.get("content") == rerun.answer):
        messages.append({"role": "assistant", "content": rerun.answer})
    return [*messages, feedback_message(rerun.feedback)]


def kept_messages(messages: Any) -> list[Message]:
    """A step's conversation as bounded plain data (texts cut, the middle dropped when too long)."""
    kept: list[Message] = []
    for m in messages if isinstance(messages, list) else []:
        if not isinstance(m, Mapping) or m.get("role") not in ("system", "user", "assistant", "tool"):
            continue
        content = m.get("content")
        data: dict[str, Any] = {"role": m["role"]}
        if content is not None:
            data["content"] = clip(
                content if isinstance(content, str) else json.dumps(content, default=str), MAX_MESSAGE_CHARS
            )
        calls = m.get("tool_calls")
        if isinstance(calls, list) and calls:
            data["tool_calls"] = json.loads(json.dumps(calls[:50], default=str))
            data["tool_calls"] = [c for c in data["tool_calls"] if isinstance(c, dict)]
        for key in ("tool_call_id", "name"):
            if isinstance(m.get(key), str):
                data[key] = clip(m[key], 200)
        kept.append(Message.model_validate(data))
    if len(kept) > MAX_MESSAGES:  # the task prompt first, the latest exchanges last
        kept = kept[:2] + kept[-(MAX_MESSAGES - 2) :]
    return kept


def rerun_provider(rerun: Rerun) -> Any:
    """A CrewAI human-input provider that starts the re-run step with its conversation and the feedback
    (once: a guardrail's retry starts as usual). It never prompts: no step sets ``human_input`` in CrewAI."""
    from crewai.core.providers.human_input import SyncHumanInputProvider

    messages = conversation(rerun)

    class _Resume(SyncHumanInputProvider):
        def __init__(self) -> None:
            self.used = False

        def setup_messages(self, context: Any) -> bool:
            if self.used or getattr(context.task, "name", None) != rerun.step:
                return False
            self.used = True
            context.messages.extend(copy.deepcopy(messages))
            return True

    return _Resume()


class Progress:
    """One run's way through the crew: finished steps, the state each step starts from, the pauses.

    ``assembled`` is the run's ``AssembledCrew``; with a checkpoint, its state is restored
    and the finished steps' tasks get their stored outputs, so CrewAI starts after them.
    """

    def __init__(self, assembled: Any, spec: CrewSpec, crew_name: str, checkpoint: Checkpoint | None) -> None:
        self._assembled = assembled
        self._steps = {s.name: s for s in spec.steps}
        self._crew = crew_name
        self.done: list[Done] = list(checkpoint.done) if checkpoint else []
        self.rerun: Rerun | None = checkpoint.rerun if checkpoint else None
        self._answers: list[StoredAnswer] = list(checkpoint.answers) if checkpoint else []
        if checkpoint is not None:
            self._restore(checkpoint.state)
        self._state = checkpoint.state if checkpoint else self._snapshot()
        self._start_state = self._state
        assembled.desk.store(self._answers)
        self._apply_done()

    @property
    def finished(self) -> bool:
        """Whether every step is finished already (nothing left to run)."""
        return len(self.done) == len(self._steps)

    def provider(self) -> Any:
        """The human-input provider for a step re-run with feedback, or None."""
        return rerun_provider(self.rerun) if self.rerun is not None else None

    def started(self, step: str | None) -> None:
        self._start_state = self._state
        self._assembled.desk.enter(step)

    def completed(self, step: str | None, output: Any) -> None:
        """A step finished: kept as finished, or, for a step a person reviews, the run pauses."""
        spec = self._steps.get(step or "")
        if spec is None:
            return
        raw = clip(str(getattr(output, "raw", "") or ""), MAX_RAW_CHARS)
        state = self._snapshot()
        if spec.human_input:
            messages = kept_messages(getattr(output, "messages", None))
            pending = Pending(kind="review", step=spec.name, raw=raw, messages=messages)
            request = InputRequest(
                kind=InputKind.review,
                step=spec.name,
                prompt=review_prompt(spec.name, str(getattr(output, "agent", "") or spec.agent)),
                output=clip(printable(raw), MAX_OUTPUT_SHOWN),
                timeout_s=spec.human_input_timeout_s,
                on_timeout=spec.on_timeout,
            )
            raise InputNeeded(request, self._checkpoint(state, None, pending))
        self.done.append(Done(step=spec.name, raw=raw))
        self._answers = [a for a in self._answers if a.step != spec.name]
        if self.rerun is not None and self.rerun.step == spec.name:
            self.rerun = None
        self._state = state

    def question(self, asked: QuestionAsked) -> InputNeeded:
        """The run pauses for an ask_human question: it resumes from the start of the asking step."""
        pending = Pending(kind="question", step=asked.step, index=asked.index, question=asked.question)
        request = InputRequest(
            kind=InputKind.question,
            step=asked.step,
            prompt=asked.question,
            output=None,
            timeout_s=None,
            on_timeout="fail",
        )
        rerun = self.rerun if self.rerun is not None and self.rerun.step == asked.step else None
        return InputNeeded(request, self._checkpoint(self._start_state, rerun, pending))

    def result(self) -> str:
        """The last finished step's answer (for a run with nothing left to run)."""
        return printable(self.done[-1].raw) if self.done else ""

    def _checkpoint(self, state: RunState, rerun: Rerun | None, pending: Pending) -> dict[str, Any]:
        checkpoint = Checkpoint(
            v=CHECKPOINT_VERSION,
            crew=self._crew,
            done=self.done,
            state=state,
            rerun=rerun,
            answers=self._answers,
            pending=pending,
        )
        return checkpoint.dump()

    def _snapshot(self) -> RunState:
        a = self._assembled
        return RunState.model_validate(
            {"ledger": a.ledger.state(), "evidence": a.evidence.state(), "outputs": a.outputs.state()}, strict=False
        )

    def _restore(self, state: RunState) -> None:
        a = self._assembled
        try:
            a.ledger.restore([e.model_dump(mode="json") for e in state.ledger])
            a.evidence.restore(state.evidence)
            a.outputs.restore(state.outputs)
        except ValueError as e:
            raise ValueError(f"corrupt checkpoint: state: {str(e)[:500]}") from None

    def _apply_done(self) -> None:
        """The finished steps' tasks get their stored outputs; CrewAI then starts at the first task without one."""
        from crewai.tasks.task_output import TaskOutput

        if not self.done:
            return
        tasks = {t.name: t for t in self._assembled.crew.tasks}
        for item in self.done:
            task = tasks[item.step]
            task.output = TaskOutput(
                name=item.step,
                description=task.description,
                expected_output=task.expected_output,
                raw=item.raw,
                agent=task.agent.role,
            )
        self._assembled.crew.checkpoint_kickoff_event_id = "resume"
