"""Java: a Spring Kafka consumer logging JSON through logstash-logback-encoder.

Events from a producer started carrying offsets (``+01:00``); a change from
OffsetDateTime to LocalDateTime parsing rejects them. The trace is in the JSON
``stack_trace`` field: ListenerExecutionFailedException, ``Caused by:`` the
DateTimeParseException from JDK frames, then our mapper. Frame shapes from OpenJDK 17.
Red herring: commit-offset warnings logged at ERROR all day. Decoy: later commit.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    DANA,
    EMIL,
    Clock,
    H,
    History,
    Logs,
    M,
    S,
    add_noise,
    arrivals,
    build_repo,
    expected_base,
    finish,
    java_trace,
    line_no,
    write_runbooks,
)

CASE = "java_kafka"
SERVICE = "settlement"
DAY = "2026-12-02"
SRC = "src/main/java/com/acme/settlement/"

MAPPER_V1 = """\
package com.acme.settlement.consumer;

import com.acme.settlement.model.Settlement;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import org.springframework.stereotype.Component;

@Component
public class EventMapper {
    public Settlement toSettlement(SettlementEvent event) {
        OffsetDateTime at = OffsetDateTime.parse(event.timestamp());
        return new Settlement(event.id(), event.merchant(), event.amountCents(),
                at.withOffsetSameInstant(ZoneOffset.UTC));
    }
}
"""

LISTENER = """\
package com.acme.settlement.consumer;

import com.acme.settlement.repo.SettlementRepository;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Component;

@Component
public class SettlementListener {
    private final EventMapper mapper;
    private final SettlementRepository repository;

    public SettlementListener(EventMapper mapper, SettlementRepository repository) {
        this.mapper = mapper;
        this.repository = repository;
    }

    @KafkaListener(topics = "settlements")
    public void onMessage(SettlementEvent event) {
        repository.save(mapper.toSettlement(event));
    }
}
"""

RUNBOOKS = {
    "settlement.md": """\
# Runbook: settlement consumer

- Logs are JSON (logstash encoder); the Java stack trace is in `stack_trace`.
- `Offset commit failed ... rebalance` errors: consumer group rebalances; harmless.
- A `ListenerExecutionFailedException`: read the last `Caused by:`.
""",
}

KAFKA_FRAMES = [
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.doInvokeRecordListener(KafkaMessageListenerContainer.java:2869)",
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.doInvokeWithRecords(KafkaMessageListenerContainer.java:2747)",
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.invokeRecordListener(KafkaMessageListenerContainer.java:2591)",
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.invokeListener(KafkaMessageListenerContainer.java:2473)",
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.pollAndInvoke(KafkaMessageListenerContainer.java:1568)",
    "org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.run(KafkaMessageListenerContainer.java:1355)",
    "java.base/java.util.concurrent.CompletableFuture$AsyncRun.run(CompletableFuture.java:1804)",
    "java.base/java.lang.Thread.run(Thread.java:833)",
]


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-19T09:00:00",
        "settlement: Kafka consumer",
        files={
            "README.md": "# settlement\n\nSettlement events consumer (Spring Kafka).\n",
            "build.gradle": "plugins { id 'org.springframework.boot' version '3.3.5' }\n",
            SRC + "consumer/EventMapper.java": MAPPER_V1,
            SRC + "consumer/SettlementListener.java": LISTENER,
        },
        tag="v6.0.0",
    )
    h.commit(
        EMIL,
        "2026-12-01T16:10:00",
        "mapper: settlement times are local business times (#221)",
        role="culprit",
        edits=[
            (SRC + "consumer/EventMapper.java", "import java.time.OffsetDateTime;", "import java.time.LocalDateTime;"),
            (SRC + "consumer/EventMapper.java", "OffsetDateTime at = OffsetDateTime.parse(event.timestamp());",
             "LocalDateTime at = LocalDateTime.parse(event.timestamp());"),
            (SRC + "consumer/EventMapper.java", "at.withOffsetSameInstant(", "at.atOffset("),
        ],
    )  # fmt: skip
    h.commit(
        ALICE,
        "2026-12-02T07:00:00",
        "Release 6.1.0",
        role="deployed",
        tag="v6.1.0",
        edits=[("README.md", "(Spring Kafka).\n", "(Spring Kafka). Release 6.1.0.\n")],
    )
    h.commit(
        EMIL,
        "2026-12-02T12:30:00",
        "mapper: final class (#224)",
        role="decoy",
        edits=[(SRC + "consumer/EventMapper.java", "public class EventMapper", "public final class EventMapper")],
    )
    return h


def _trace(tree: dict[str, str], stamp: str, offset: int) -> tuple[str, int]:
    mline = line_no(tree[SRC + "consumer/EventMapper.java"], "LocalDateTime.parse(event.timestamp())")
    lline = line_no(tree[SRC + "consumer/SettlementListener.java"], "repository.save(mapper.toSettlement(event));")
    listener = f"com.acme.settlement.consumer.SettlementListener.onMessage(SettlementListener.java:{lline})"
    outer = ("org.springframework.kafka.listener.ListenerExecutionFailedException: Listener method 'public void "
             "com.acme.settlement.consumer.SettlementListener.onMessage(com.acme.settlement.consumer.SettlementEvent)' "
             "threw exception")  # fmt: skip
    cause = [
        "java.base/java.time.format.DateTimeFormatter.parseResolved0(DateTimeFormatter.java:2052)",
        "java.base/java.time.format.DateTimeFormatter.parse(DateTimeFormatter.java:1954)",
        "java.base/java.time.LocalDateTime.parse(LocalDateTime.java:494)",
        "java.base/java.time.LocalDateTime.parse(LocalDateTime.java:479)",
        f"com.acme.settlement.consumer.EventMapper.toSettlement(EventMapper.java:{mline})",
        listener,
        "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    ]
    text = java_trace(outer, KAFKA_FRAMES, [
        (f"java.time.format.DateTimeParseException: Text '{stamp}' could not be parsed, unparsed text found at "
         f"index {offset}",
         cause, len(KAFKA_FRAMES) - 2),
    ])  # fmt: skip
    return text, mline


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "settlement.json.log"
    start, end, deploy = 8 * H, 14 * H, 9 * H + 58 * M + 30 * S + 10
    thread = "org.springframework.kafka.KafkaListenerEndpointContainer#0-0-C-1"
    VALUES = {"INFO": 20000, "WARN": 30000, "ERROR": 40000}  # noqa: N806

    def ls(ms: int, level: str, logger: str, msg: str, **kw: Any) -> str:
        obj = {"@timestamp": clock.iso(ms), "@version": "1", "message": msg, "logger_name": logger,
               "thread_name": thread, "level": level, "level_value": VALUES[level],
               **kw}  # fmt: skip
        return json.dumps(obj, separators=(",", ":"))

    def ok(r: random.Random, ms: int) -> tuple[str, str]:
        return name, ls(
            ms,
            "INFO",
            "c.a.s.consumer.SettlementListener",
            f"settled id=stl_{r.getrandbits(40):010x} merchant=m_{r.randrange(10000)}",
        )

    add_noise(logs, rnd, start, end, 100, [(1, ok)])
    for ms in arrivals(rnd, start, end, 1 / 9):
        logs.add(
            name,
            ms,
            ls(
                ms,
                "ERROR",
                "o.a.k.c.c.internals.ConsumerCoordinator",
                "[Consumer clientId=settlement-0, groupId=settlement] Offset commit failed on partition "
                "settlements-3: The coordinator is not aware of this member (rebalance in progress)",
            ),
        )
    deployed_sha = repo.sha("deployed")
    logs.add(
        name,
        deploy,
        ls(
            deploy,
            "INFO",
            "c.a.s.SettlementApplication",
            f"Started SettlementApplication 6.1.0 (commit {deployed_sha[:7]}) in 6.2 seconds",
        ),
    )
    onset = None
    line = 0
    for ms in arrivals(rnd, deploy + 70 * S, end, 2):
        onset = onset or ms
        stamp = f"2026-12-02T{rnd.randrange(8, 14):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}+01:00"
        trace, line = _trace(tree, stamp, 19)
        logs.add(
            name,
            ms,
            ls(
                ms,
                "ERROR",
                "o.s.k.l.KafkaMessageListenerContainer",
                "Error handler threw an exception",
                stack_trace=trace,
            ),
        )
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [11 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="LocalDateTime.parse rejects event timestamps with an offset; every settlement event fails.",
        repo=repo,
        culprit_role="culprit",
        file=SRC + "consumer/EventMapper.java",
        line=line,
        signature=r"DateTimeParseException|ListenerExecutionFailedException",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "6.1.0"},
        decoy_roles=["decoy"],
        stack="java/spring-kafka/logstash-json",
        formats=["logstash-logback-encoder JSON with stack_trace"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
