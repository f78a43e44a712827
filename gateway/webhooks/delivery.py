"""Delivering webhooks from the store: the event log is the queue, a cursor per hook.

A ``WebhookDeliverer`` (one per gateway process, or any process that runs one) claims
webhook cursors with pending events under a lease, and for each sends the events it
asks for one at a time, in log order; many tasks are sent in parallel. A success (2xx)
moves the cursor past the event and records the attempt in one transaction. A failure
worth retrying (5xx, 408, 429, a timeout, a connection error) is recorded and the cursor
waits for ``next_attempt_at`` (exponential backoff with jitter); other answers (3xx are
never followed, 4xx) and an event past its attempts or age are recorded ``failed`` and
the cursor moves on.

Delivery is exactly once per asked event while the deliverer lives, and at least once
across a crash: a process that dies after the receiver answered but before the cursor
moved sends that event again. ``Crewgate-Delivery`` is the same for every attempt at one
(hook, seq), so receivers deduplicate on it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import random
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import structlog

from gateway import metrics
from gateway.notify import TERMINAL
from gateway.settings import Settings, process_env
from gateway.store import CursorMove, DeliveryRecord, Store, StoredEvent, WebhookRecord
from gateway.store._core import utcnow
from gateway.wakeups import Signal, SignalKind
from gateway.webhooks.policy import LookupFailed, Refused, Target, check_url, resolve

__all__ = ["Outcome", "WebhookDeliverer", "WebhookSender", "delivery_id", "sign"]

log = structlog.get_logger("crewgate.webhooks")
MAX_RESPONSE_BYTES = 65_536  # of a receiver's answer, read and dropped
EVENTS_PER_READ = 200
RETRY_STATUSES = frozenset({408, 429})
USER_AGENT = "crewgate-webhooks/1"
SWEEP_GAP_S = 0.05


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``Crewgate-Signature``: ``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_id(hook: WebhookRecord, seq: int) -> str:
    """Stable for every attempt at one event of one hook: what receivers deduplicate on."""
    return f"{hook.id}.{seq}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retry: bool  # worth another attempt later
    http_status: int | None
    error: str | None
    duration_ms: int


class WebhookSender:
    """One POST of one event, to the address that was checked, following no redirect."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # loading the CA store costs tens of milliseconds: once per sender, not per delivery
        self._tls = ssl.create_default_context()

    async def send(self, hook: WebhookRecord, event: StoredEvent, attempt: int) -> Outcome:
        started = time.monotonic()
        try:
            target = await resolve(check_url(hook.url, self.settings.webhook_hosts), allow_private=self._private)
            secret = self._secret(hook)
            status = await self._post(target, self._headers(hook, event, attempt, secret), event.wire.encode())
        except LookupFailed as exc:
            return self._outcome(started, None, str(exc), retry=True)
        except Refused as exc:
            return self._outcome(started, None, f"refused: {exc}", retry=False)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            return self._outcome(started, None, f"{type(exc).__name__}: {exc}"[:300], retry=True)
        if 200 <= status < 300:
            return Outcome(True, False, status, None, _ms(started))
        retry = status >= 500 or status in RETRY_STATUSES
        why = "redirects are not followed" if 300 <= status < 400 else f"the receiver answered {status}"
        return self._outcome(started, status, why, retry=retry)

    @property
    def _private(self) -> bool:
        return self.settings.webhook_allow_private

    @staticmethod
    def _outcome(started: float, status: int | None, error: str, *, retry: bool) -> Outcome:
        return Outcome(False, retry, status, error, _ms(started))

    @staticmethod
    def _secret(hook: WebhookRecord) -> str | None:
        if hook.secret_env is None:
            return hook.secret
        value = process_env().get(hook.secret_env)
        if not value:
            raise LookupFailed(f"the webhook's secret variable {hook.secret_env} is not set")
        return value

    @staticmethod
    def _headers(hook: WebhookRecord, event: StoredEvent, attempt: int, secret: str | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Crewgate-Event": event.type,
            "Crewgate-Delivery": delivery_id(hook, event.seq),
            "Crewgate-Attempt": str(attempt),
        }
        if secret:
            headers["Crewgate-Signature"] = sign(secret, int(time.time()), event.wire.encode())
        return headers

    async def _post(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = httpx.Timeout(self.settings.webhook_timeout_s)
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, verify=self._tls
        ) as client:
            request = client.build_request(
                "POST",
                target.connect_url(),
                headers={**headers, "Host": target.host_header},
                content=body,
                extensions=extensions,
            )
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        return response.status_code


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class WebhookDeliverer:
    """Claims webhook cursors with pending events and sends them; see the module doc."""

    def __init__(self, settings: Settings, store: Store, sender: WebhookSender | None = None) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender or WebhookSender(settings)
        self.owner = f"webhooks-{uuid.uuid4().hex[:12]}"
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self.delivered = 0
        self.failed = 0

    def poke(self) -> None:
        """Look for pending events now (an append was committed somewhere)."""
        self._wake.set()

    def on_signals(self, signals: Sequence[Signal]) -> None:
        """A wake-ups handler: appended events may be some a hook asks for."""
        if any(s.kind is SignalKind.appended for s in signals):
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled: claim and drain, every ``webhook_poll_s`` or when poked."""
        try:
            while True:
                busy = await self._sweep_logged()
                self._wake.clear()
                if not busy:  # a burst of appends makes one sweep, not one each
                    await asyncio.sleep(SWEEP_GAP_S)
                try:
                    async with asyncio.timeout(self.settings.webhook_poll_s):
                        await self._wake.wait()  # an append, or a slot freed
                except TimeoutError:
                    pass
        finally:
            await self._stop()

    async def _stop(self) -> None:
        """Stop the drains and hand their cursors back, so a restarted process (or another)
        goes on at once rather than after the lease. A send cut short is sent again."""
        for job in list(self._busy.values()):
            job.cancel()
        await asyncio.gather(*self._busy.values(), return_exceptions=True)
        try:
            await self.store.release_webhooks(self.owner)
        except Exception as exc:  # the leases run out instead
            log.warning("webhook leases not handed back", error=str(exc))

    async def _sweep_logged(self) -> bool:
        """``sweep``; True when every slot is taken (more may be pending: look again as one frees)."""
        try:
            await self.sweep()
        except Exception as exc:  # the store is down: the next sweep tries again
            log.warning("webhook sweep failed", error=str(exc))
            return False
        return len(self._busy) >= self.settings.webhook_concurrency

    async def sweep(self) -> int:
        """Claim what is pending (as many as free slots) and start draining it; how many."""
        free = self.settings.webhook_concurrency - len(self._busy)
        claimed = await self.store.claim_webhooks(self.owner, self.settings.webhook_lease_s, free)
        for hook in claimed:
            if hook.id in self._busy:
                continue
            job = asyncio.create_task(self._drain(hook), name=f"webhook-{hook.id}")
            self._busy[hook.id] = job
            job.add_done_callback(functools.partial(self._finished, hook.id))
        return len(claimed)

    def _finished(self, key: str, _job: asyncio.Task[None]) -> None:
        job = self._busy.pop(key, None)
        if job is not None and not job.cancelled() and job.exception() is not None:
            log.error("webhook drain crashed", webhook_id=key, exc_info=job.exception())
        self._wake.set()  # a slot is free

    async def _drain(self, hook: WebhookRecord) -> None:
        """Send ``hook``'s pending events in order until none is left, one fails for now,
        or the lease is lost. The last move of a short read hands the cursor back: an event
        appended since is claimed again by the next sweep (its append wakes it)."""
        while True:
            events = await self.store.events_for_task(hook.task_id, hook.delivered_seq, EVENTS_PER_READ)
            if not events:
                await self.store.move_webhook(hook.id, self.owner, self._hold(hook))
                return
            more = len(events) == EVENTS_PER_READ
            moved = await self._stretch(hook, events, keep=more)
            if moved is None or not more:
                return
            hook = moved

    async def _stretch(self, hook: WebhookRecord, events: list[StoredEvent], *, keep: bool) -> WebhookRecord | None:
        """Deliver the asked events of ``events``, stepping over the others; the hook as moved,
        or None once it is handed back (a retry is due later, or the lease is lost)."""
        wanted = [e for e in events if e.type in hook.events]
        if not wanted:  # nothing asked for in this stretch: step over it
            move = CursorMove(events[-1].seq, state=_state(events[-1]), lease_s=self._lease(keep))
            moved = await self.store.move_webhook(hook.id, self.owner, move)
            return _moved(hook, move) if moved and keep else None
        for i, event in enumerate(wanted):
            last = i == len(wanted) - 1
            through = events[-1] if last else event  # past the last asked one: step over the rest too
            moved_hook = await self._deliver(hook, event, through, keep=keep or not last)
            if moved_hook is None:
                return None
            hook = moved_hook
        return hook

    def _lease(self, keep: bool) -> float | None:
        return self.settings.webhook_lease_s if keep else None

    def _hold(self, hook: WebhookRecord) -> CursorMove:
        """Hand the cursor back where it is."""
        return CursorMove(hook.delivered_seq, hook.state, hook.attempt, hook.first_failed_at, hook.next_attempt_at)

    async def _deliver(
        self, hook: WebhookRecord, event: StoredEvent, through: StoredEvent, *, keep: bool
    ) -> WebhookRecord | None:
        """One attempt at ``event``; settled (delivered or given up), the cursor moves to
        ``through``. The hook as moved while still held, else None."""
        attempt = hook.attempt + 1
        outcome = await self.sender.send(hook, event, attempt)
        now = utcnow()
        first_failed = hook.first_failed_at or now
        if outcome.ok or not self._again(outcome, attempt, first_failed, now):
            status = "delivered" if outcome.ok else "failed"
            move = CursorMove(through.seq, state=_state(through), lease_s=self._lease(keep))
            next_at = None
        else:
            status = "retrying"
            next_at = now + timedelta(seconds=self._backoff(attempt))
            move = CursorMove(event.seq - 1, hook.state, attempt, first_failed, next_at)
        record = DeliveryRecord(
            0, hook.id, hook.task_id, event.seq, event.type, attempt, status, outcome.http_status,
            outcome.error, outcome.duration_ms, now, next_at,
        )  # fmt: skip
        if not await self.store.move_webhook(hook.id, self.owner, move, record):
            log.warning("webhook lease lost; another deliverer has it", webhook_id=hook.id, seq=event.seq)
            return None
        self._count(hook, event, record)
        return _moved(hook, move) if move.lease_s is not None else None

    def _again(self, outcome: Outcome, attempt: int, first_failed: datetime, now: datetime) -> bool:
        if not outcome.retry or attempt >= self.settings.webhook_max_attempts:
            return False
        return (now - first_failed).total_seconds() < self.settings.webhook_max_age_s

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with full jitter over its upper half."""
        ceiling = min(self.settings.webhook_retry_base_s * 2.0 ** (attempt - 1), self.settings.webhook_retry_max_s)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _count(self, hook: WebhookRecord, event: StoredEvent, record: DeliveryRecord) -> None:
        if metrics.enabled():
            metrics.WEBHOOK_DELIVERIES.labels(status=record.status, event_type=event.type).inc()
            metrics.WEBHOOK_DURATION.observe(record.duration_ms / 1000)
        if record.status == "delivered":
            self.delivered += 1
            return
        if record.status == "failed":
            self.failed += 1
        log.info(
            "webhook delivery failed",
            task_id=hook.task_id,
            webhook_id=hook.id,
            seq=event.seq,
            attempt=record.attempt,
            status=record.status,
            http_status=record.http_status,
            error=record.error,
        )


def _state(event: StoredEvent) -> str:
    return "done" if event.type in TERMINAL else "active"


def _moved(hook: WebhookRecord, move: CursorMove) -> WebhookRecord:
    held = move.lease_s is not None
    return replace(
        hook,
        delivered_seq=move.delivered_seq,
        state=move.state,
        attempt=move.attempt,
        first_failed_at=move.first_failed_at,
        next_attempt_at=move.next_attempt_at,
        lease_expires_at=utcnow() + timedelta(seconds=move.lease_s or 0) if held else None,
    )
