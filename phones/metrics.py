"""The phone path's Prometheus counters and histograms, one set per process.

Under gunicorn they live in prometheus-client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, set by deploy/gunicorn.conf.py) and ``/metrics`` sums
them over the workers (``deviceupdate.metrics``). Each call here is a counter increment:
labels are fixed words (an outcome, a channel, an error code, a deferral reason), never
a value a phone chooses (a MAC, a user, a model), so the series stay few.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from phones.choices import Channel, Outcome, PhoneError
from phones.decision import Decision

# "up to date" -> "up_to_date": label values as Prometheus users write them.
_OUTCOME_LABEL = {outcome: outcome.value.replace(" ", "_") for outcome in Outcome}
# The notes phones.decision._deferral gives a deferred module (tests/phones/test_metrics.py
# drives both, so a reworded note fails there, not silently here).
DEFERRAL_REASONS = {
    "outside the maintenance window": "maintenance_window",
    "offer cap reached": "offer_cap",
}

UPDATE_CHECKS = Counter(
    "deviceupdate_update_checks",
    "Update checks answered, by channel and answer (offered, up_to_date, no_rule, "
    "not_replicated, deferred, held, refused).",
    ["channel", "outcome"],
)
OFFERS = Counter(
    "deviceupdate_offers",
    "Modules offered new files (a check may offer several update types).",
    ["channel"],
)
DEFERRALS = Counter(
    "deviceupdate_deferrals",
    "Update checks that would have been offered files, deferred, by reason.",
    ["reason"],
)
DOWNLOADS = Counter(
    "deviceupdate_downloads",
    "Store downloads Django answered itself (nginx serves them in production), by HTTP "
    "status (200 whole file, 206 range, 304, 404, 416, 503 busy).",
    ["status"],
)
LOG_UPLOADS = Counter("deviceupdate_log_uploads", "Device logs stored.", ["channel"])
LOG_UPLOAD_REFUSALS = Counter(
    "deviceupdate_log_upload_refusals",
    "Device log uploads refused, by the phone protocol's error code.",
    ["channel", "code"],
)
PHONE_ERRORS = Counter(
    "deviceupdate_phone_errors",
    "Phone protocol error answers (<Error><Code>), by code.",
    ["code"],
)
REQUEST_DURATION = Histogram(
    "deviceupdate_phone_request_duration_seconds",
    "Time to answer a phone request (a download: until its first byte), by endpoint.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def update_check_counted(channel: Channel, decision: Decision | None) -> None:
    """Count one answered check; ``decision`` None: the check was refused."""
    if decision is None:
        UPDATE_CHECKS.labels(channel._value_, "refused").inc()
        return
    outcome = decision.outcome
    UPDATE_CHECKS.labels(channel._value_, _OUTCOME_LABEL[outcome]).inc()
    if decision.offered:
        OFFERS.labels(channel._value_).inc(len(decision.offered))
    if outcome is Outcome.DEFERRED:
        note = next((m.note for m in decision.modules if m.outcome is Outcome.DEFERRED), "")
        DEFERRALS.labels(DEFERRAL_REASONS.get(note, "other")).inc()


def log_upload_counted(channel: Channel, code: PhoneError | None) -> None:
    """Count one log upload: stored (``code`` None) or refused with ``code``."""
    if code is None:
        LOG_UPLOADS.labels(channel._value_).inc()
    else:
        LOG_UPLOAD_REFUSALS.labels(channel._value_, code._value_).inc()
