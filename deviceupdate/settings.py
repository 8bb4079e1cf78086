"""Settings of the Device Update Web Service, all read from environment variables.

Every variable is documented in `.env.example`. A fresh machine runs on the embedded
defaults (SQLite, a local file store, kombu's filesystem broker); `DATABASE_URL`,
`CELERY_BROKER_URL`/`REDIS_URL` and `DEVICEUPDATE_STORAGE` switch to PostgreSQL, Redis
and S3-compatible storage. Nothing falls back silently: production refuses to start
without a database and a broker named (the embedded ones may be named on purpose), and
`manage.py runinfo` prints the mode in use.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from pathlib import Path
from typing import Any

import django_stubs_ext
from kombu import Exchange, Queue

from deviceupdate.brokers import filesystem_transport_options
from deviceupdate.databases import database_config
from deviceupdate.directory import DirectoryConfig
from deviceupdate.env import ConfigError, Env
from deviceupdate.logging_config import logging_config
from deviceupdate.syslog import FACILITIES, parse_host_port
from deviceupdate.topology_names import normalise_fqdn, server_queue_name

# Lets generic admin and queryset classes be subscripted at run time, as typed.
django_stubs_ext.monkeypatch()

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Mode -------------------------------------------------------------------------
DEVICEUPDATE_ENV: str = env.choice("DEVICEUPDATE_ENV", "development", ("development", "production"))
PRODUCTION = DEVICEUPDATE_ENV == "production"
DEBUG = env.boolean("DEBUG", not PRODUCTION)

# --- The data directory: everything the service writes lives under it ---------------
DATA_DIR = env.path("DEVICEUPDATE_DATA_DIR", Path("var"), base=BASE_DIR)
DATA_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
CENTRAL_STORE_DIR = DATA_DIR / "central"
LOG_DIR = DATA_DIR / "logs"


def _secret_key() -> str:
    value = env.optional_str("SECRET_KEY")
    if value is not None:
        if len(value) < 50:
            raise ConfigError("SECRET_KEY", "must be at least 50 characters")
        return value
    if PRODUCTION:
        raise ConfigError("SECRET_KEY", "is required when DEVICEUPDATE_ENV=production")
    # Development: one key per data directory, kept so sessions survive restarts.
    key_file = DATA_DIR / "secret-key.txt"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(64))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

# --- This server --------------------------------------------------------------------
_fqdn_default = normalise_fqdn(socket.getfqdn()) or "localhost"
try:
    SERVER_FQDN = normalise_fqdn(env.string("DEVICEUPDATE_SERVER_FQDN", _fqdn_default), strict=True)
except ValueError as error:
    raise ConfigError("DEVICEUPDATE_SERVER_FQDN", str(error)) from None

# This server's own copy of the update files, written only by its worker and served to
# phones (by nginx in production). Default: $DEVICEUPDATE_DATA_DIR/servers/<fqdn>/DeviceUpdateStore
SERVER_STORE_DIR = env.path(
    "DEVICEUPDATE_SERVER_STORE_DIR",
    DATA_DIR / "servers" / SERVER_FQDN / "DeviceUpdateStore",
    base=BASE_DIR,
)
ALLOWED_HOSTS = env.csv(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", SERVER_FQDN]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS", "is required when DEVICEUPDATE_ENV=production")
CSRF_TRUSTED_ORIGINS = env.csv("CSRF_TRUSTED_ORIGINS", [])

# --- Applications -------------------------------------------------------------------
INSTALLED_APPS = [
    "deviceupdate.admin_site.DeviceUpdateAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as the project's own static files
    "axes",
    "portal",
    "phones",
    # The tooling, for its make_demo_package command (it calls the app, never the reverse).
    "deviceupdate_devtools",
]

MIDDLEWARE = [
    # First: on the phones' paths an unknown Host or an HTML error page becomes the
    # protocol's XML error.
    "phones.middleware.PhoneRefusals",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's, plus a 503 in one line for a database that cannot be written.
    "deviceupdate.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a sign-in refused for a lockout into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "deviceupdate.urls"
WSGI_APPLICATION = "deviceupdate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
_database_url = env.url("DATABASE_URL", None, schemes=("sqlite", "postgres", "postgresql", "pgsql"))
if _database_url is None:
    # SQLite is the development default; production names its database, even when it
    # chooses SQLite (DATABASE_URL=sqlite:///...).
    if PRODUCTION:
        raise ConfigError("DATABASE_URL", "is required when DEVICEUPDATE_ENV=production")
    _database_url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
DATABASE_URL: str = _database_url
DATABASES: dict[str, Any] = {
    "default": database_config(DATABASE_URL, production=PRODUCTION, data_dir=DATA_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared by every process of this server) ---------------------------------
REDIS_URL = env.url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- Celery -------------------------------------------------------------------------
BROKER_DIR: Path = DATA_DIR / "broker"
_broker_url = env.url(
    "CELERY_BROKER_URL", REDIS_URL, schemes=("filesystem", "redis", "rediss", "amqp")
)
if _broker_url is None:
    # The embedded broker is the development default; production names its broker, even
    # when it chooses the embedded one (CELERY_BROKER_URL=filesystem://).
    if PRODUCTION:
        raise ConfigError(
            "CELERY_BROKER_URL",
            "is required when DEVICEUPDATE_ENV=production (REDIS_URL also serves)",
        )
    _broker_url = "filesystem://"
CELERY_BROKER_KIND: str = _broker_url.split(":", 1)[0].lower()
if CELERY_BROKER_KIND == "filesystem":
    # The filesystem transport has no host; naming one keeps kombu from warning
    # "No hostname was supplied" before every command that queues a task.
    _broker_url = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_transport_options(BROKER_DIR)
CELERY_BROKER_URL: str = _broker_url
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Every long job keeps its own row (status, progress, error); results are not stored.
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.integer(
    "CELERY_TASK_SOFT_TIME_LIMIT", 1800, minimum=10, maximum=86400
)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues this server's worker consumes: the shared ones and its own. Replication and
# heartbeat tasks for a server go to that server's queue (see deviceupdate.celery_routes).
SERVER_QUEUE = server_queue_name(SERVER_FQDN)
CELERY_TASK_QUEUES: tuple[Queue, ...] = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("imports", Exchange("imports"), routing_key="imports"),
    Queue(SERVER_QUEUE, Exchange("servers", type="direct"), routing_key=SERVER_QUEUE),
)
CELERY_TASK_ROUTES = ("deviceupdate.celery_routes.route_task",)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
HEARTBEAT_SECONDS = env.integer("DEVICEUPDATE_HEARTBEAT_SECONDS", 60, minimum=5, maximum=3600)
CELERY_BEAT_SCHEDULE = {
    # Every minute: an import whose worker died is failed within its lease plus a minute.
    "imports-recover": {"task": "portal.tasks.imports_recover_task", "schedule": 60},
    "central-store-sweep": {"task": "portal.tasks.central_store_sweep_task", "schedule": 300},
    "device-logs-retention": {
        "task": "phones.tasks.device_logs_retention_task",
        "schedule": 3600,
    },
    "servers-resync": {
        "task": "portal.tasks.servers_resync_task",
        "schedule": env.integer("DEVICEUPDATE_RESYNC_SECONDS", 3600, minimum=60, maximum=7 * 86400),
    },
    "rollouts-observe": {
        "task": "phones.tasks.rollouts_observe_task",
        "schedule": env.integer(
            "DEVICEUPDATE_ROLLOUT_OBSERVE_SECONDS", 60, minimum=5, maximum=3600
        ),
    },
    "download-logs-read": {"task": "phones.tasks.download_logs_read_task", "schedule": 60},
    "servers-heartbeat": {
        "task": "portal.tasks.servers_heartbeat_task",
        "schedule": HEARTBEAT_SECONDS,
    },
}

# --- Files --------------------------------------------------------------------------
DEVICEUPDATE_STORAGE: str = env.choice("DEVICEUPDATE_STORAGE", "local", ("local", "s3"))
if DEVICEUPDATE_STORAGE == "s3":
    _bucket = env.optional_str("AWS_STORAGE_BUCKET_NAME")
    if _bucket is None:
        raise ConfigError("AWS_STORAGE_BUCKET_NAME", "is required when DEVICEUPDATE_STORAGE=s3")
    _central: dict[str, Any] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _bucket,
            "endpoint_url": env.optional_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env.optional_str("AWS_S3_REGION_NAME"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _central = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Private: never served directly; servers copy from here into their own store.
        "OPTIONS": {"location": str(CENTRAL_STORE_DIR), "base_url": None},
    }
STORAGES: dict[str, dict[str, Any]] = {
    "default": _central,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploads larger than this go to a temporary file under the data directory, not memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(exist_ok=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Package import -----------------------------------------------------------------
IMPORT_STAGING_DIR = DATA_DIR / "imports"
IMPORT_MAX_MEMBER_SIZE = env.integer(
    "DEVICEUPDATE_MAX_MEMBER_SIZE", 1024**3, minimum=1024, maximum=16 * 1024**3
)
IMPORT_MAX_PACKAGE_SIZE = env.integer(
    "DEVICEUPDATE_MAX_PACKAGE_SIZE", 4 * 1024**3, minimum=1024, maximum=64 * 1024**3
)
IMPORT_REFUSE_SHA1 = env.boolean("DEVICEUPDATE_REFUSE_SHA1_CATALOGS", False)
# A running import renews its job's lease every IMPORT_LEASE_RENEW_SECONDS; once the
# lease has run out (IMPORT_LEASE_SECONDS after the last renewal) its worker is taken
# for dead and beat's recovery fails the job and removes what it left.
IMPORT_LEASE_RENEW_SECONDS = env.integer(
    "DEVICEUPDATE_IMPORT_LEASE_RENEW_SECONDS", 30, minimum=1, maximum=3600
)
IMPORT_LEASE_SECONDS = env.integer(
    "DEVICEUPDATE_IMPORT_LEASE_SECONDS", 150, minimum=3, maximum=86400
)
if IMPORT_LEASE_SECONDS < 3 * IMPORT_LEASE_RENEW_SECONDS:
    raise ConfigError(
        "DEVICEUPDATE_IMPORT_LEASE_SECONDS",
        "must be at least three times DEVICEUPDATE_IMPORT_LEASE_RENEW_SECONDS",
    )

# --- Downloads (development; nginx enforces the same cap in production) ---------------
DOWNLOAD_MAX_CONCURRENT = env.integer("DEVICEUPDATE_MAX_DOWNLOADS", 200, minimum=1, maximum=100_000)
DOWNLOAD_RETRY_AFTER = env.integer("DEVICEUPDATE_DOWNLOAD_RETRY_AFTER", 30, minimum=1, maximum=3600)
# nginx's log of the image downloads it serves (deploy/nginx), which this server's worker
# reads into DownloadEvent rows; the read position is kept beside it (<file>.position).
DOWNLOAD_ACCESS_LOG = env.path(
    "DEVICEUPDATE_DOWNLOAD_ACCESS_LOG",
    DATA_DIR / "servers" / SERVER_FQDN / "nginx" / "downloads.log",
    base=BASE_DIR,
)

# Device logs phones upload, and the request handler's daily audit files, on this server.
DEVICE_LOG_DIR = env.path(
    "DEVICEUPDATE_LOG_STORE_DIR", DATA_DIR / "DeviceUpdateLogs", base=BASE_DIR
)

# --- Health (/healthz) ------------------------------------------------------------
# Free space each local store (central, this server's, device logs) must keep.
HEALTH_MIN_FREE_BYTES = (
    env.integer("DEVICEUPDATE_HEALTH_MIN_FREE_MB", 1024, minimum=0, maximum=10**9) * 1024**2
)
# Phone records this server's spool may hold waiting for the loader before it is
# unhealthy (a backlog this large means the loader is stopped or its writes fail).
HEALTH_MAX_SPOOL_BACKLOG_BYTES = (
    env.integer("DEVICEUPDATE_HEALTH_MAX_SPOOL_BACKLOG_MB", 256, minimum=1, maximum=10**6) * 1024**2
)

# --- Phone endpoints --------------------------------------------------------------
# The spool: each web process appends every phone record to its own file here (this
# server's local disk) before answering; the loader (manage.py phone_record_loader)
# writes them to the database. Files rotate by size and age; past the folder's bound
# records are dropped, loudly (/healthz, an audit row, a counter).
PHONE_SPOOL_DIR = env.path(
    "DEVICEUPDATE_SPOOL_DIR", DATA_DIR / "servers" / SERVER_FQDN / "spool", base=BASE_DIR
)
PHONE_SPOOL_MAX_BYTES = env.integer(
    "DEVICEUPDATE_SPOOL_MAX_BYTES", 2 * 1024**3, minimum=1024, maximum=1024**4
)
PHONE_SPOOL_FILE_BYTES = env.integer(
    "DEVICEUPDATE_SPOOL_FILE_BYTES", 16 * 1024**2, minimum=1024, maximum=1024**3
)
PHONE_SPOOL_FILE_SECONDS = env.integer(
    "DEVICEUPDATE_SPOOL_FILE_SECONDS", 300, minimum=1, maximum=86400
)
# Addresses of reverse proxies allowed to say who the client is (X-Forwarded-For);
# from anyone else the header is ignored, so it cannot be used to dodge throttling.
TRUSTED_PROXIES = env.csv("DEVICEUPDATE_TRUSTED_PROXIES", ["127.0.0.1", "::1"])
# Failed external sign-ins allowed per address and per user in the window, then 429.
EXTERNAL_AUTH_MAX_FAILURES = env.integer(
    "DEVICEUPDATE_AUTH_MAX_FAILURES", 10, minimum=1, maximum=10_000
)
EXTERNAL_AUTH_WINDOW = env.integer(
    "DEVICEUPDATE_AUTH_WINDOW_SECONDS", 300, minimum=10, maximum=86400
)

# --- Metrics (/metrics, Prometheus' text format) -------------------------------------
# Who may read /metrics: clients from these networks (the client's address as for the
# phones, trusted proxies resolved), or anyone sending `Authorization: Bearer <token>`.
# Others get 403. Default: loopback only, no token.
METRICS_ALLOWED_NETWORKS = env.networks(
    "DEVICEUPDATE_METRICS_ALLOWED_CIDRS", ["127.0.0.0/8", "::1/128"]
)
METRICS_TOKEN = env.optional_str("DEVICEUPDATE_METRICS_TOKEN")
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 32:
    raise ConfigError("DEVICEUPDATE_METRICS_TOKEN", "must be at least 32 characters")
# How often beat recomputes the fleet gauges (phones, rollouts, imports, replication,
# heartbeats) into the cache, where each scrape reads them.
FLEET_METRICS_SECONDS = env.integer(
    "DEVICEUPDATE_FLEET_METRICS_SECONDS", 60, minimum=5, maximum=3600
)
CELERY_BEAT_SCHEDULE["fleet-metrics"] = {
    "task": "phones.tasks.fleet_metrics_task",
    "schedule": FLEET_METRICS_SECONDS,
}

# --- Rollouts and notifications ----------------------------------------------------
# E-mail: rollout halts and completions go to the administrators with an address and to
# these addresses. The console backend (the default) writes the mails to the log.
EMAIL_BACKEND = env.string("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.string("EMAIL_HOST", "localhost")
EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", f"deviceupdate@{SERVER_FQDN}")
DEVICEUPDATE_NOTIFY_EMAILS = env.csv("DEVICEUPDATE_NOTIFY_EMAILS", [])
# The address `manage.py ensure_admin` gives `admin` (so that make run's mails have a reader).
DEVICEUPDATE_ADMIN_EMAIL = env.email("DEVICEUPDATE_ADMIN_EMAIL", "admin@localhost")

# --- HTTPS listeners (manage.py nginx_config) ---------------------------------------
# Certificate (with its intermediates, leaf first) and key of the internal HTTPS listener;
# the external listener's default to the same files. Empty: nginx_config renders plain
# HTTP only unless given --certificate/--certificate-key.
TLS_CERTIFICATE = env.optional_str("DEVICEUPDATE_TLS_CERTIFICATE")
TLS_CERTIFICATE_KEY = env.optional_str("DEVICEUPDATE_TLS_CERTIFICATE_KEY")
TLS_EXTERNAL_CERTIFICATE = env.optional_str("DEVICEUPDATE_TLS_EXTERNAL_CERTIFICATE")
TLS_EXTERNAL_CERTIFICATE_KEY = env.optional_str("DEVICEUPDATE_TLS_EXTERNAL_CERTIFICATE_KEY")
# modern (TLS 1.2 and 1.3) or legacy-phones (adds TLS 1.0/1.1 and the RSA/CBC ciphers of
# older phone firmware; see .env.example for the risk). The two below override it.
TLS_PROFILE = env.choice("DEVICEUPDATE_TLS_PROFILE", "modern", ("modern", "legacy-phones"))
TLS_PROTOCOLS = env.optional_str("DEVICEUPDATE_TLS_PROTOCOLS")
TLS_CIPHERS = env.optional_str("DEVICEUPDATE_TLS_CIPHERS")

# --- Deployment readiness (manage.py check_deployment) -------------------------------
# The SIP domains and the DHCP domain(s) phones get: ucupdates-r2.<domain> must resolve to
# this pool for each, and the certificates must name UCUpdates-R2.<domain>.
READINESS_SIP_DOMAINS = env.csv("DEVICEUPDATE_SIP_DOMAINS", [])
READINESS_DHCP_DOMAINS = env.csv("DEVICEUPDATE_DHCP_DOMAINS", [])
# Addresses of the pool's load balancer (the DNS record may point there instead).
READINESS_LOAD_BALANCER_ADDRESSES = env.csv("DEVICEUPDATE_LOAD_BALANCER_ADDRESSES", [])
# DNS servers the checks ask (addresses) and their port; empty: /etc/resolv.conf's.
READINESS_DNS_SERVERS = env.csv("DEVICEUPDATE_DNS_SERVERS", [])
READINESS_DNS_PORT = env.integer("DEVICEUPDATE_DNS_PORT", 53, minimum=1, maximum=65535)
# NTP servers (host or host:port) this server's clock is compared with; empty: the
# targets of the _ntp._udp.<domain> SRV records.
READINESS_NTP_SERVERS = env.csv("DEVICEUPDATE_NTP_SERVERS", [])
READINESS_NTP_MAX_OFFSET_MS = env.integer(
    "DEVICEUPDATE_NTP_MAX_OFFSET_MS", 1000, minimum=1, maximum=3_600_000
)
# The phones' trust bundle (PEM): the root (and any intermediate) CAs they trust.
READINESS_TRUST_BUNDLE = env.optional_str("DEVICEUPDATE_PHONE_TRUST_BUNDLE")
READINESS_CERT_EXPIRY_DAYS = env.integer(
    "DEVICEUPDATE_CERT_EXPIRY_WARN_DAYS", 30, minimum=1, maximum=365
)
# The base URLs the synthetic phone and the certificate check use; empty: from this
# server's pool (http:// and https:// its internal web FQDN, https:// its external one).
READINESS_INTERNAL_HTTP_URL = env.url(
    "DEVICEUPDATE_CHECK_INTERNAL_HTTP_URL", None, schemes=("http",)
)
READINESS_INTERNAL_HTTPS_URL = env.url(
    "DEVICEUPDATE_CHECK_INTERNAL_HTTPS_URL", None, schemes=("https",)
)
READINESS_EXTERNAL_HTTPS_URL = env.url(
    "DEVICEUPDATE_CHECK_EXTERNAL_HTTPS_URL", None, schemes=("https",)
)
# Seconds each check may take; a check that runs out says so (WARN).
READINESS_TIMEOUT = env.integer("DEVICEUPDATE_CHECK_TIMEOUT_SECONDS", 10, minimum=1, maximum=300)
# A worker whose last heartbeat is older than this is reported (default: 3 heartbeats).
READINESS_HEARTBEAT_MAX_AGE = env.integer(
    "DEVICEUPDATE_HEARTBEAT_MAX_AGE_SECONDS",
    3 * HEARTBEAT_SECONDS,
    minimum=10,
    maximum=86400,
)
# --- Webhooks and the audit stream ------------------------------------------------
# Outbound webhooks (portal.services.webhooks): each attempt waits this long for an
# answer; a connection error, a timeout, a 5xx, 408 or 429 is retried after
# BACKOFF * 2**(attempt - 1) seconds (at most BACKOFF_MAX), up to MAX_ATTEMPTS in all.
WEBHOOK_TIMEOUT_SECONDS = env.integer(
    "DEVICEUPDATE_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=120
)
WEBHOOK_MAX_ATTEMPTS = env.integer("DEVICEUPDATE_WEBHOOK_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
WEBHOOK_BACKOFF_SECONDS = env.integer(
    "DEVICEUPDATE_WEBHOOK_BACKOFF_SECONDS", 30, minimum=0, maximum=3600
)
WEBHOOK_BACKOFF_MAX_SECONDS = env.integer(
    "DEVICEUPDATE_WEBHOOK_BACKOFF_MAX_SECONDS", 3600, minimum=0, maximum=86400
)
# Every audit-trail row is also written, after commit, as one JSON line to this sink:
# none, syslog (RFC 5424 to DEVICEUPDATE_AUDIT_SYSLOG_ADDRESS over UDP or TCP) or file.
AUDIT_SINK = env.choice("DEVICEUPDATE_AUDIT_SINK", "none", ("none", "syslog", "file"))
AUDIT_SYSLOG_PROTOCOL = env.choice("DEVICEUPDATE_AUDIT_SYSLOG_PROTOCOL", "udp", ("udp", "tcp"))
AUDIT_SYSLOG_FACILITY = env.choice(
    "DEVICEUPDATE_AUDIT_SYSLOG_FACILITY",
    "local0",
    tuple(FACILITIES),
)
try:
    AUDIT_SYSLOG_ADDRESS = parse_host_port(
        env.string("DEVICEUPDATE_AUDIT_SYSLOG_ADDRESS", "127.0.0.1:514")
    )
except ValueError as error:
    raise ConfigError("DEVICEUPDATE_AUDIT_SYSLOG_ADDRESS", str(error)) from None
AUDIT_FILE = env.path("DEVICEUPDATE_AUDIT_FILE", LOG_DIR / "audit.jsonl", base=BASE_DIR)

# --- Auth, security -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Sign-in lockout (django-axes) ---------------------------------------------------
# Password sign-ins to the control panel (its login page; the API's session comes from
# it, API tokens are issued by an administrator, never for a password) are counted per
# username and address and per address alone; either rule at the limit locks for the
# cool-off. axes has one limit for both rules, so the per-address one is reached first or
# together: the limit of failures from one address locks that address for every username.
# The address is the one the phones' throttle uses: X-Forwarded-For only from
# DEVICEUPDATE_TRUSTED_PROXIES. The phones' external sign-ins keep their own throttle
# (DEVICEUPDATE_AUTH_*): axes neither counts nor blocks them (portal.admin.lockouts).
SIGNIN_FAILURE_LIMIT = env.integer("DEVICEUPDATE_SIGNIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
SIGNIN_COOLOFF_MINUTES = env.integer(
    "DEVICEUPDATE_SIGNIN_COOLOFF_MINUTES", 15, minimum=1, maximum=1440
)
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before any password is checked.
    "portal.admin.lockouts.SigninGuardBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = SIGNIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = dt.timedelta(minutes=SIGNIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS: list[str | list[str]] = [["username", "ip_address"], "ip_address"]
AXES_CLIENT_IP_CALLABLE = "phones.auth.client_address"
AXES_WHITELIST_CALLABLE = "portal.admin.lockouts.is_phone_sign_in"
AXES_LOCKOUT_CALLABLE = "portal.admin.lockouts.lockout_response"
# A lockout lasts the cool-off from the failure that caused it: tries while locked are
# refused without being counted, so they neither extend it nor audit it again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the failures: with the per-address rule it would wipe every
# account's failures from that address, so a valid account could keep guessing others.
AXES_RESET_ON_SUCCESS = False
# Lockouts are in the audit trail; axes' table of every successful sign-in (it only
# grows) is not kept.
AXES_DISABLE_ACCESS_LOG = True
# Its pages are the control panel's own (portal.admin.lockouts), lifted by a service.
AXES_ENABLE_ADMIN = False
# No "AXES: BEGIN" line on every start: a command's output is its own lines only.
AXES_VERBOSE = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.boolean("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env.boolean("CSRF_COOKIE_SECURE", PRODUCTION)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", PRODUCTION)
# Only the control panel and the API are redirected: phones inside the firewall speak
# plain HTTP (BaseURL is http://), so their update checks, log uploads and downloads, the
# static files and the health probe are never redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^(?!admin/|admin$|api/|api$)"]
SECURE_HSTS_SECONDS = env.integer(
    "SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0, maximum=63072000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", False)
# Production default true: the shipped deployment is nginx (`manage.py nginx_config`,
# which always sets X-Forwarded-Proto itself) in front of gunicorn on 127.0.0.1; without
# it the HTTPS redirect of the control panel would loop.
if env.boolean("DEVICEUPDATE_BEHIND_TLS_PROXY", PRODUCTION):
    # Only when the reverse proxy in front always sets this header itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload submits the domain to browser vendors' lists: an organisation's own
    # decision (SECURE_HSTS_PRELOAD), not a default a product may take for it.
    "security.W021",
]

# --- Directory accounts (LDAP / Active Directory; DEVICEUPDATE_LDAP_*) ---------------
# Optional: without DEVICEUPDATE_LDAP_URL no directory backend is installed. With it,
# directory accounts are checked first, then local ones (ModelBackend stays last: the
# break-glass administrators still sign in when the directory is down).
DIRECTORY: DirectoryConfig | None = DirectoryConfig.from_env(env, base=BASE_DIR)
if DIRECTORY is not None:
    AUTHENTICATION_BACKENDS.insert(1, "portal.directory.backend.DirectoryBackend")

# --- REST API -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.DjangoModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Device Update Web Service API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ (Swagger UI) from the project's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Internationalisation, time -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.string("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging ------------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = logging_config(LOG_LEVEL)
