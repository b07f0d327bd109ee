"""Stratum settings, read once from the environment (django-environ).

With nothing set, Stratum runs as the *embedded default*: SQLite under var/, Celery
tasks executed in process, a local-memory cache and e-mail written to var/outbox/.
Point DATABASE_URL, REDIS_URL and EMAIL_URL at real services to run on them.
STRATUM_PRODUCTION=1 turns on the production checks: no secret defaults, secure cookies,
HSTS, and startup fails fast when SECRET_KEY or ALLOWED_HOSTS is missing.
"""
from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("STRATUM_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

PRODUCTION = env.bool("STRATUM_PRODUCTION", default=False)
DEMO_MODE = env.bool("STRATUM_DEMO", default=False)
DEBUG = env.bool("DJANGO_DEBUG", default=False)

if PRODUCTION:
    for required in ("SECRET_KEY", "ALLOWED_HOSTS"):
        if not env.str(required, default="") and not env.str(f"DJANGO_{required}", default=""):
            raise ImproperlyConfigured(
                f"STRATUM_PRODUCTION is set but {required} is missing: set {required} in the environment."
            )
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when STRATUM_PRODUCTION is set.")
    if DEMO_MODE:
        raise ImproperlyConfigured("STRATUM_DEMO must be off when STRATUM_PRODUCTION is set.")

SECRET_KEY = env.str("SECRET_KEY", default=env.str("DJANGO_SECRET_KEY", default="dev-only-not-secret-" + "x" * 40))
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "crm.core",
    "accounts",
    "segmentation",
    "recommendations",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The storefront API (/api/v1/) runs through this shorter chain (crm.core.wsgi): API keys, no
# sessions, CSRF tokens, messages or login lockout. Keep security and locale first, as above.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# accounts.Event's per-customer index covers type, amount and item on PostgreSQL; SQLite (the
# embedded default) builds the same index without them, which is what we want there.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.core.context_processors.stratum",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded default keeps its SQLite file here
DATABASES = {
    "default": env.db_url_config(DATABASE_URL)
    if DATABASE_URL
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "stratum.sqlite3")}
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a task writes; a busy timeout instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker, Celery --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="stratum"),  # two instances on one Redis
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "stratum"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
# Embedded default: no broker, so tasks run in process (eagerly) and errors propagate.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"

# --- E-mail -----------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
EMAIL_OUTBOX_DIR = VAR_DIR / "outbox"
if EMAIL_URL:
    vars().update(env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(EMAIL_OUTBOX_DIR)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Stratum <no-reply@stratum.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Auth, i18n, time ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# One currency per deployment (ISO 4217).
CURRENCY = env.str("CURRENCY", default="USD")

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Outside production, WhiteNoise serves straight from the static folders (no collectstatic
# needed for `make demo`); production serves the collected, hashed and compressed files.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_THROTTLE_RATE", default="1200/min")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "crm.core.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}
# Seconds a process trusts a verified API key before asking the database again (a revoked key
# stops working everywhere within this time; at once in the process that revoked it). 0: never.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Stratum storefront API",
    "DESCRIPTION": (
        "Events, customers, catalog, feedback and privacy endpoints for storefronts. "
        "Authenticate with `Authorization: Api-Key <key>`; each endpoint names the scope it needs."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                                            "description": "`Api-Key <key>`"}}
    },
    "SECURITY": [{"ApiKeyAuth": []}],
    "COMPONENT_SPLIT_REQUEST": True,
    # The same choice sets appear in several serializers; one schema name each.
    "ENUM_NAME_OVERRIDES": {
        "PlatformEnum": "accounts.choices.Platform",
        "EventTypeEnum": "accounts.choices.EventType",
        "ConsentSourceEnum": "accounts.choices.ConsentSource",
        "SentimentLabelEnum": "accounts.choices.SentimentLabel",
    },
}

# --- Security (production) -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_AGE = 8 * 3600

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Login lockout (django-axes) ------------------------------------------------------------
# 5 failed sign-ins for the same username from the same IP address lock that pair out for 15
# minutes; the login page says so (crm.core.views.login_locked_out, HTTP 429). Attempts are kept
# in the database (AxesDatabaseHandler: shared by every web process, works with the embedded
# default, no Redis needed) and listed in the admin. A successful sign-in resets the count.
# The client address is REMOTE_ADDR. Behind a reverse proxy every client would share the proxy's
# address: then install django-ipware and set AXES_IPWARE_PROXY_COUNT (see the django-axes docs).
from datetime import timedelta as _timedelta  # noqa: E402

INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = _timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "crm.core.views.login_locked_out"
AXES_VERBOSE = False
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # one INFO line per sign-in otherwise
# --- end of login lockout -------------------------------------------------------------------

# --- Stratum ------------------------------------------------------------------------------
INGEST_MAX_BATCH = 1000
INGEST_MAX_FUTURE_SECONDS = 300
INGEST_MAX_PROPERTIES_BYTES = 4096

# Segmentation: memory for the per-customer aggregation of a recompute (PostgreSQL SET LOCAL),
# so that it does not spill to disk.
SEGMENTATION_WORK_MEM = env.str("SEGMENTATION_WORK_MEM", default="256MB")

# --- Recommendations serving (recommendations/serving.py, ready.py) -----------------------
RECS_PREPARED_STATEMENTS = env.bool("RECS_PREPARED_STATEMENTS", default=True)
RECS_CACHE_SECONDS = env.int("RECS_CACHE_SECONDS", default=600)  # a list ranked on request
# Rank recently seen customers' lists ahead (ready.py): where there is a shared cache and workers.
# The embedded default keeps its cache in each process, where lists made by one are not seen by another.
RECS_READY_LISTS = env.bool("RECS_READY_LISTS", default=bool(REDIS_URL))
RECS_READY_DAYS = env.int("RECS_READY_DAYS", default=30)  # "recently seen"
RECS_READY_DEPTH = env.int("RECS_READY_DEPTH", default=40)  # items per ready list
RECS_READY_SECONDS = env.int("RECS_READY_SECONDS", default=2 * 86400)  # a ready list's lifetime in Redis

# --- Campaigns (campaigns app) ------------------------------------------------------------
# At most this many marketing messages per customer per rolling 7 days (0: no cap).
CAMPAIGN_FREQUENCY_CAP = env.int("CAMPAIGN_FREQUENCY_CAP", default=3)
# A purchase within this many days after a message (or a click) counts as a conversion.
CAMPAIGN_ATTRIBUTION_DAYS = env.int("CAMPAIGN_ATTRIBUTION_DAYS", default=7)
# Sending: messages claimed per batch (one SMTP connection per batch), parallel batch chains
# per campaign, and a rate limit in messages per second per sending process (0: none).
CAMPAIGN_SEND_BATCH_SIZE = env.int("CAMPAIGN_SEND_BATCH_SIZE", default=200)
CAMPAIGN_SEND_CONCURRENCY = env.int("CAMPAIGN_SEND_CONCURRENCY", default=1)
CAMPAIGN_SEND_RATE = env.float("CAMPAIGN_SEND_RATE", default=0.0)
# The sent-mark of each message is committed the moment the SMTP server has the message. With
# this off (default) PostgreSQL acknowledges that commit before its WAL flush: a killed worker
# loses nothing (the server has the commit), but a crash of the database server itself can lose
# the marks of its last ~0.6 s, and those messages would be sent again (same Message-ID). On, each
# message waits for a WAL flush (one fsync, ~4 ms on slow disks).
CAMPAIGN_SEND_SYNCHRONOUS_COMMIT = env.bool("CAMPAIGN_SEND_SYNCHRONOUS_COMMIT", default=False)
# A send task sends batches for this long, then hands over to a fresh task (fair queues).
CAMPAIGN_SEND_TASK_SECONDS = env.int("CAMPAIGN_SEND_TASK_SECONDS", default=60)
# Temporary SMTP errors: retry with exponential backoff from this many seconds, this many times.
CAMPAIGN_RETRY_BACKOFF_SECONDS = env.int("CAMPAIGN_RETRY_BACKOFF_SECONDS", default=30)
CAMPAIGN_MAX_ATTEMPTS = env.int("CAMPAIGN_MAX_ATTEMPTS", default=5)
# Claims of a dead sender are taken back at once on PostgreSQL (advisory lock); elsewhere
# after this lease.
CAMPAIGN_CLAIM_LEASE_SECONDS = env.int("CAMPAIGN_CLAIM_LEASE_SECONDS", default=300)
# Public base URL of the tracking endpoints (open pixel, click redirect, unsubscribe).
CAMPAIGN_BASE_URL = env.str("CAMPAIGN_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
CAMPAIGN_FROM_EMAIL = env.str("CAMPAIGN_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
# Address for mailto: unsubscribes (List-Unsubscribe); empty: only the one-click URL.
CAMPAIGN_UNSUBSCRIBE_MAILTO = env.str("CAMPAIGN_UNSUBSCRIBE_MAILTO", default="")
CAMPAIGN_MESSAGE_ID_DOMAIN = env.str("CAMPAIGN_MESSAGE_ID_DOMAIN", default="stratum.local")
# Top-N recommendations in messages: a dotted path to fn(customer_ids, *, n) -> {id: [dict]}.
CAMPAIGN_RECOMMENDER = env.str("CAMPAIGN_RECOMMENDER", default="campaigns.rendering.default_recommender")
CAMPAIGN_RECOMMENDATIONS_N = env.int("CAMPAIGN_RECOMMENDATIONS_N", default=3)
# Goodwill coupons issued by customer service: at most this percentage (or fixed amount).
CAMPAIGN_GOODWILL_MAX_PERCENT = env.int("CAMPAIGN_GOODWILL_MAX_PERCENT", default=20)
CAMPAIGN_GOODWILL_MAX_AMOUNT = env.int("CAMPAIGN_GOODWILL_MAX_AMOUNT", default=50)
