"""Java: a Spring Boot 3 service logging through Logback, with ``Caused by:`` chains.

A new regional warehouse lookup returns null for SKUs of a region without a warehouse;
the NullPointerException (JDK 17 helpful message) is wrapped in a ReservationException.
Red herring: Hibernate statement timeouts all day. Decoy: a later commit to the same
file, after the onset. Frame shapes captured from OpenJDK 17.0.15 printStackTrace().
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._common import (
    BEN,
    CHEN,
    DANA,
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

CASE = "java_spring"
SERVICE = "inventory"
DAY = "2026-11-23"
SRC = "src/main/java/com/acme/inventory/"

STOCK_V1 = """\
package com.acme.inventory.service;

import com.acme.inventory.model.Sku;
import com.acme.inventory.model.Warehouse;
import com.acme.inventory.repo.StockRepository;
import java.util.Map;
import org.springframework.stereotype.Service;

@Service
public class StockService {
    private final StockRepository stock;
    private final Map<String, Warehouse> warehouses;

    public StockService(StockRepository stock, Map<String, Warehouse> warehouses) {
        this.stock = stock;
        this.warehouses = warehouses;
    }

    public int reserve(Sku sku, int quantity) {
        Warehouse warehouse = warehouses.get("default");
        String zone = warehouse.getZone();
        return stock.decrement(zone, sku.code(), quantity);
    }
}
"""

RESERVATION = """\
package com.acme.inventory.service;

import com.acme.inventory.model.OrderLine;
import java.util.List;
import org.springframework.stereotype.Service;

@Service
public class ReservationService {
    private final StockService stock;

    public ReservationService(StockService stock) {
        this.stock = stock;
    }

    public int reserveAll(String orderId, List<OrderLine> lines) {
        int reserved = 0;
        for (OrderLine line : lines) {
            try {
                reserved += stock.reserve(line.sku(), line.quantity());
            } catch (RuntimeException e) {
                throw new ReservationException("reservation failed for order " + orderId, e);
            }
        }
        return reserved;
    }
}
"""

CONTROLLER = """\
package com.acme.inventory.web;

import com.acme.inventory.service.ReservationService;
import org.springframework.web.bind.annotation.*;

@RestController
@RequestMapping("/api/reservations")
public class ReservationController {
    private final ReservationService reservations;

    public ReservationController(ReservationService reservations) {
        this.reservations = reservations;
    }

    @PostMapping
    public ReservationResponse create(@RequestBody ReservationRequest request) {
        int reserved = reservations.reserveAll(request.orderId(), request.lines());
        return new ReservationResponse(request.orderId(), reserved);
    }
}
"""

EXCEPTION = """\
package com.acme.inventory.service;

public class ReservationException extends RuntimeException {
    public ReservationException(String message, Throwable cause) {
        super(message, cause);
    }
}
"""

POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.3.5</version>
  </parent>
  <groupId>com.acme</groupId>
  <artifactId>inventory</artifactId>
  <version>4.2.0</version>
  <properties><java.version>17</java.version></properties>
</project>
"""

SPRING_FRAMES = [  # JDK 17 reflection + Spring MVC 6.1 + Tomcat 10.1, as printed
    "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:77)",
    "java.base/jdk.internal.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:43)",
    "java.base/java.lang.reflect.Method.invoke(Method.java:568)",
    "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:255)",
    "org.springframework.web.method.support.InvocableHandlerMethod.invokeForRequest(InvocableHandlerMethod.java:188)",
    "org.springframework.web.servlet.mvc.method.annotation.ServletInvocableHandlerMethod.invokeAndHandle(ServletInvocableHandlerMethod.java:118)",
    "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.invokeHandlerMethod(RequestMappingHandlerAdapter.java:926)",
    "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.handleInternal(RequestMappingHandlerAdapter.java:831)",
    "org.springframework.web.servlet.mvc.method.AbstractHandlerMethodAdapter.handle(AbstractHandlerMethodAdapter.java:87)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1089)",
    "org.springframework.web.servlet.DispatcherServlet.doService(DispatcherServlet.java:979)",
    "org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)",
    "org.springframework.web.servlet.FrameworkServlet.doPost(FrameworkServlet.java:914)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:590)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
    "org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:195)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:140)",
    "org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:167)",
    "org.apache.coyote.http11.Http11Processor.service(Http11Processor.java:391)",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1736)",
    "org.apache.tomcat.util.threads.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1191)",
    "org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:63)",
    "java.base/java.lang.Thread.run(Thread.java:833)",
]

RUNBOOKS = {
    "inventory.md": """\
# Runbook: inventory service

- `ReservationException` with a `Caused by:` chain: read the deepest cause; it names the
  class and line in `com.acme.inventory`.
- `SqlExceptionHelper : ERROR: canceling statement due to statement timeout` a few times
  an hour is the nightly stock report competing for locks. Known, ticket INV-2207.
- Rollback: `deployctl rollback inventory --to <previous>`.
""",
}


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-15T08:30:00",
        "inventory: reservations API",
        files={
            "README.md": "# inventory\n\nStock and reservations (Spring Boot).\n",
            "pom.xml": POM,
            SRC + "service/StockService.java": STOCK_V1,
            SRC + "service/ReservationService.java": RESERVATION,
            SRC + "service/ReservationException.java": EXCEPTION,
            SRC + "web/ReservationController.java": CONTROLLER,
        },
        tag="v4.1.0",
    )
    h.commit(
        CHEN,
        "2026-11-21T13:14:00",
        "stock: reserve from the SKU's regional warehouse (#512)",
        role="culprit",
        edits=[(SRC + "service/StockService.java", 'warehouses.get("default");', "warehouses.get(sku.region());")],
    )
    h.commit(
        BEN,
        "2026-11-22T10:00:00",
        "Release 4.2.0",
        role="deployed",
        tag="v4.2.0",
        edits=[("README.md", "(Spring Boot).\n", "(Spring Boot). Release 4.2.0.\n")],
    )
    h.commit(
        CHEN,
        "2026-11-23T15:40:00",
        "stock: name the repository field for clarity (#518)",
        role="decoy",
        edits=[(SRC + "service/StockService.java", "return stock.decrement(zone", "return this.stock.decrement(zone")],
    )
    return h


def _trace(tree: dict[str, str], order_id: str) -> tuple[str, int]:
    stock = tree[SRC + "service/StockService.java"]
    resv = tree[SRC + "service/ReservationService.java"]
    ctrl = tree[SRC + "web/ReservationController.java"]
    npe_line = line_no(stock, "String zone = warehouse.getZone();")
    call_line = line_no(resv, "reserved += stock.reserve(")
    throw_line = line_no(resv, "throw new ReservationException(")
    ctrl_line = line_no(ctrl, "reservations.reserveAll(")
    outer = [
        f"com.acme.inventory.service.ReservationService.reserveAll(ReservationService.java:{throw_line})",
        f"com.acme.inventory.web.ReservationController.create(ReservationController.java:{ctrl_line})",
        *SPRING_FRAMES,
    ]
    npe = ('java.lang.NullPointerException: Cannot invoke "com.acme.inventory.model.Warehouse.getZone()" '
           'because "warehouse" is null')  # fmt: skip
    cause = [
        f"com.acme.inventory.service.StockService.reserve(StockService.java:{npe_line})",
        f"com.acme.inventory.service.ReservationService.reserveAll(ReservationService.java:{call_line})",
    ]
    text = java_trace(
        f"com.acme.inventory.service.ReservationException: reservation failed for order {order_id}",
        outer,
        [(npe, cause, len(outer) - 1)],
    )
    return text, npe_line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "inventory.log"
    start, end, deploy = 9 * H, 15 * H, 12 * H + 17 * M + 44 * S + 90
    threads = [f"nio-8080-exec-{i}" for i in range(1, 11)]

    def lb(ms: int, level: str, logger: str, msg: str, thread: str | None = None) -> str:
        th = thread or rnd.choice(threads)
        return f"{clock.iso(ms)} {level:>5} 1 --- [inventory] [{th:>15}] {logger:<40} : {msg}"

    def req(r: random.Random, ms: int) -> tuple[str, str]:
        return name, lb(
            ms,
            "INFO",
            "c.a.i.web.ReservationController",
            f"reserved order=ord_{r.getrandbits(36):09x} lines={r.randrange(1, 7)} in {r.randrange(3, 90)}ms",
        )

    def misc(r: random.Random, ms: int) -> tuple[str, str]:
        return name, lb(ms, r.choice(["INFO", "DEBUG", "WARN"]), "com.zaxxer.hikari.pool.HikariPool",
                        f"HikariPool-1 - Pool stats (total={r.randrange(8, 11)}, active={r.randrange(0, 8)}, "
                        f"idle={r.randrange(0, 6)}, waiting=0)", "HikariPool-1 housekeeper")  # fmt: skip

    add_noise(logs, rnd, start, end, 100, [(6, req), (1, misc)])
    for ms in arrivals(rnd, start, end, 1 / 12):
        logs.add(name, ms, lb(ms, "WARN", "o.h.engine.jdbc.spi.SqlExceptionHelper", "SQL Error: 0, SQLState: 57014"))
        logs.add(
            name,
            ms + 1,
            lb(
                ms + 1,
                "ERROR",
                "o.h.engine.jdbc.spi.SqlExceptionHelper",
                "ERROR: canceling statement due to statement timeout",
            ),
        )
    deployed_sha = repo.sha("deployed")
    logs.add(
        name,
        deploy - 15000,
        lb(
            deploy - 15000,
            "INFO",
            "o.s.b.w.e.tomcat.GracefulShutdown",
            "Commencing graceful shutdown. Waiting for active requests to complete",
            "tomcat-shutdown",
        ),
    )
    logs.add(
        name,
        deploy - 600,
        lb(
            deploy - 600,
            "INFO",
            "c.acme.inventory.InventoryApplication",
            "Started InventoryApplication in 7.412 seconds (process running for 8.03)",
            "main",
        ),
    )
    logs.add(
        name, deploy, lb(deploy, "INFO", "deploybot", f"Deployed inventory 4.2.0 (commit {deployed_sha[:7]})", "main")
    )
    onset = None
    line = 0
    for ms in arrivals(rnd, deploy + 20 * S, end, 2.5):
        onset = onset or ms
        order_id = f"ord_{rnd.getrandbits(36):09x}"
        trace, line = _trace(tree, order_id)
        logs.add(
            name,
            ms,
            lb(ms, "ERROR", "c.a.i.web.ApiExceptionHandler", f"Unhandled exception on POST /api/reservations\n{trace}"),
        )
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [12 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Regional warehouse lookup returns null for regions without a warehouse.",
        repo=repo,
        culprit_role="culprit",
        file=SRC + "service/StockService.java",
        line=line,
        signature=r"NullPointerException|ReservationException",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "4.2.0"},
        decoy_roles=["decoy"],
        stack="java/spring-boot/logback",
        formats=["logback (spring boot 3 console)", "java stack trace with Caused by"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
