"""Cause outside the repository, with a stack trace into our code: the partner's TLS
certificate expires.

A Spring Boot 2.7 service (the older Logback console layout) pays out through a
partner API. At the onset every call fails with ResourceAccessException, caused by an
SSLHandshakeException, caused by ... CertificateExpiredException: the partner's
certificate expired. The trace passes through PartnerClient.send, whose calling line a
harmless commit changed the day before (deployed then, no errors for hours after), so
blaming the frames' lines points confidently at an innocent commit. The right answer
is "not in this repo". Chain shape from OpenJDK 17 printStackTrace(); the JSSE frame
line numbers are representative of JDK 17, not captured from a failing handshake.
Red herring: a reconcile job's lock error all day.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
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

CASE = "java_tls_outage"
SERVICE = "payouts"
DAY = "2026-12-03"
SRC = "src/main/java/com/acme/payouts/"

CLIENT_V1 = """\
package com.acme.payouts.partner;

import com.acme.payouts.model.Payout;
import org.springframework.stereotype.Component;
import org.springframework.web.client.RestTemplate;

@Component
public class PartnerClient {
    private static final String URL = "https://api.partner.example/v2/payouts";
    private final RestTemplate http;

    public PartnerClient(RestTemplate http) {
        this.http = http;
    }

    public PartnerReceipt send(Payout payout) {
        return http.postForObject(URL, PartnerRequest.of(payout), PartnerReceipt.class);
    }
}
"""

SERVICE_JAVA = """\
package com.acme.payouts.service;

import com.acme.payouts.model.Payout;
import com.acme.payouts.partner.PartnerClient;
import org.springframework.stereotype.Service;

@Service
public class PayoutService {
    private final PartnerClient partner;

    public PayoutService(PartnerClient partner) {
        this.partner = partner;
    }

    public String pay(Payout payout) {
        return partner.send(payout).reference();
    }
}
"""

CONTROLLER = """\
package com.acme.payouts.web;

import com.acme.payouts.model.Payout;
import com.acme.payouts.service.PayoutService;
import org.springframework.web.bind.annotation.*;

@RestController
public class PayoutController {
    private final PayoutService payouts;

    public PayoutController(PayoutService payouts) {
        this.payouts = payouts;
    }

    @PostMapping("/api/payouts")
    public String create(@RequestBody Payout payout) {
        return payouts.pay(payout);
    }
}
"""

SPRING = [
    "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    "java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:77)",
    "java.base/java.lang.reflect.Method.invoke(Method.java:568)",
    "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1072)",
    "org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1006)",
    "javax.servlet.http.HttpServlet.service(HttpServlet.java:681)",
    "org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:227)",
    "org.apache.coyote.http11.Http11Processor.service(Http11Processor.java:399)",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1789)",
    "org.apache.tomcat.util.threads.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1191)",
    "java.base/java.lang.Thread.run(Thread.java:833)",
]

RUNBOOKS = {
    "payouts.md": """\
# Runbook: payouts

- `ResourceAccessException: I/O error on POST request for "https://api.partner.example..."`
  means we could not talk to the partner. Read the deepest `Caused by:`: DNS, refused
  connections and certificate errors (`PKIX`, `CertificateExpiredException`) are on the
  partner's side; open a ticket with them and pause payouts (`deployctl config payouts
  set PAYOUTS_PAUSED=1`). Rolling back our release does not help.
- `reconcile skipped: lock held` errors are normal when two replicas race for the job.
""",
}


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-06T09:00:00",
        "payouts: partner client",
        files={
            "README.md": "# payouts\n\nPayouts to sellers via the partner API (Spring Boot 2.7).\n",
            "pom.xml": "<project><artifactId>payouts</artifactId><version>2.4.0</version></project>\n",
            SRC + "partner/PartnerClient.java": CLIENT_V1,
            SRC + "service/PayoutService.java": SERVICE_JAVA,
            SRC + "web/PayoutController.java": CONTROLLER,
        },
        tag="v2.4.0",
    )
    h.commit(
        CHEN,
        "2026-12-02T10:30:00",
        "partner: send payouts as PartnerRequest.v2 (#88)",
        role="decoy",
        edits=[(SRC + "partner/PartnerClient.java", "PartnerRequest.of(payout)", "PartnerRequest.v2(payout)")],
    )
    h.commit(
        ALICE,
        "2026-12-02T11:00:00",
        "Release 2.5.0",
        role="deployed",
        tag="v2.5.0",
        edits=[("README.md", "(Spring Boot 2.7).\n", "(Spring Boot 2.7). Release 2.5.0.\n")],
    )
    return h


def _trace(tree: dict[str, str]) -> str:
    send = line_no(tree[SRC + "partner/PartnerClient.java"], "return http.postForObject(")
    pay = line_no(tree[SRC + "service/PayoutService.java"], "return partner.send(payout)")
    create = line_no(tree[SRC + "web/PayoutController.java"], "return payouts.pay(payout);")
    pkix = "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed"
    outer = [
        "org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)",
        "org.springframework.web.client.RestTemplate.execute(RestTemplate.java:717)",
        "org.springframework.web.client.RestTemplate.postForObject(RestTemplate.java:444)",
        f"com.acme.payouts.partner.PartnerClient.send(PartnerClient.java:{send})",
        f"com.acme.payouts.service.PayoutService.pay(PayoutService.java:{pay})",
        f"com.acme.payouts.web.PayoutController.create(PayoutController.java:{create})",
        *SPRING,
    ]
    ssl = [
        "java.base/sun.security.ssl.Alert.createSSLException(Alert.java:131)",
        "java.base/sun.security.ssl.TransportContext.fatal(TransportContext.java:371)",
        "java.base/sun.security.ssl.CertificateMessage$T13CertificateConsumer.checkServerCerts(CertificateMessage.java:1357)",
        "java.base/sun.security.ssl.SSLHandshake.consume(SSLHandshake.java:396)",
        "java.base/sun.security.ssl.SSLSocketImpl.startHandshake(SSLSocketImpl.java:451)",
        "java.base/sun.net.www.protocol.https.HttpsClient.afterConnect(HttpsClient.java:580)",
        "org.springframework.http.client.SimpleBufferingClientHttpRequest.executeInternal(SimpleBufferingClientHttpRequest.java:69)",
        "org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:776)",
    ]  # fmt: skip
    header = (
        'org.springframework.web.client.ResourceAccessException: I/O error on POST request for "https://api.partner.'
        f'example/v2/payouts": {pkix}; nested exception is javax.net.ssl.SSLHandshakeException: {pkix}'
    )
    return java_trace(
        header,
        outer,
        [
            (f"javax.net.ssl.SSLHandshakeException: {pkix}", ssl, len(outer) - 1),
            (f"sun.security.validator.ValidatorException: {pkix}",
             ["java.base/sun.security.validator.PKIXValidator.doValidate(PKIXValidator.java:369)",
              "java.base/sun.security.validator.Validator.validate(Validator.java:264)"], len(outer) + 6),
            ("java.security.cert.CertPathValidatorException: validity check failed",
             ["java.base/sun.security.provider.certpath.PKIXMasterCertPathValidator.validate(PKIXMasterCertPathValidator.java:135)"],
             len(outer) + 8),
            ("java.security.cert.CertificateExpiredException: NotAfter: Thu Dec 03 09:00:00 UTC 2026",
             ["java.base/sun.security.x509.CertificateValidity.valid(CertificateValidity.java:277)",
              "java.base/sun.security.x509.X509CertImpl.checkValidity(X509CertImpl.java:619)"], len(outer) + 9),
        ],
    )  # fmt: skip


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    trace = _trace(h.tree_of("deployed"))
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "payouts.log"
    start, end, onset_at = 6 * H, 12 * H, 9 * H + 0 * M + 2 * S + 17
    threads = [f"nio-8080-exec-{i}" for i in range(1, 11)]

    def lb(ms: int, level: str, logger: str, msg: str) -> str:  # Spring Boot 2.x console layout
        return f"{clock.dotted(ms)} {level:>5} 1 --- [{rnd.choice(threads):>15}] {logger:<40} : {msg}"

    def ok(r: random.Random, ms: int) -> tuple[str, str]:
        return name, lb(ms, "INFO", "c.a.payouts.web.PayoutController",
                        f"payout sent seller=s_{r.randrange(10**6)} cents={r.randrange(500, 90000)}")  # fmt: skip

    def pool(r: random.Random, ms: int) -> tuple[str, str]:
        return name, lb(
            ms,
            "DEBUG",
            "o.a.h.i.c.PoolingHttpClientConnectionManager",
            f"Connection released: [id: {r.randrange(900)}][route: {{s}}->https://api.partner.example:443]",
        )

    add_noise(logs, rnd, start, end, 100, [(5, ok), (1, pool)])
    for ms in arrivals(rnd, start, end, 1 / 9):
        logs.add(
            name, ms, lb(ms, "ERROR", "c.a.payouts.jobs.ReconcileJob", "reconcile skipped: lock held by payouts-2")
        )
    onset = None
    for ms in arrivals(rnd, onset_at, end, 3):
        onset = onset or ms
        logs.add(name, ms, lb(ms, "ERROR", "c.a.payouts.web.ApiErrors", f"payout failed\n{trace}"))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [9 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="The partner's TLS certificate expired at 09:00; no commit of ours is involved.",
        repo=repo,
        culprit_role=None,
        file=None,
        line=None,
        signature=r"ResourceAccessException|SSLHandshakeException|CertificateExpiredException|PKIX",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": "2026-12-02T11:20:00Z", "sha": repo.sha("deployed"), "version": "2.5.0"},
        decoy_roles=["decoy"],
        stack="java/spring-boot-2/logback",
        formats=["logback (spring boot 2 console)", "java stack trace, four Caused by levels"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
