"""The only Django settings module. Values come from uus.conf (file + UUS_* env); nobody edits this."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from uus import conf

CONFIG = conf.load()
DATA_DIR = Path(CONFIG["data_dir"])
DATA_DIR.mkdir(parents=True, exist_ok=True)
BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = CONFIG["secret_key"] or conf.secret_key(str(DATA_DIR))
DEBUG = CONFIG["debug"]
ALLOWED_HOSTS = CONFIG["allowed_hosts"]
CSRF_TRUSTED_ORIGINS = CONFIG["csrf_trusted_origins"]
UUS = CONFIG  # every uus-specific value, read as settings.UUS["key"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "uus.core",
    "uus.jobs",
    "uus.accounts",
    "uus.web",
    "uus.api",
    "uus.catalog",
    "uus.inventory",
    "uus.approvals",
    "uus.repos",
    "uus.agentapi",
    "uus.directory",
    "uus.exposure",
    "uus.audit",
    "uus.deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "uus.urls"
WSGI_APPLICATION = "uus.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "uus.directory.auth.DirectoryBackend"]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "uus.web.context.navigation",
            ],
        },
    },
]

if CONFIG["database_url"]:
    DATABASES = {"default": dj_database_url.parse(CONFIG["database_url"], conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "uus.sqlite3"),
            # Kept open between requests: closing the last WAL connection checkpoints the WAL, which
            # cost ~2.6 ms of every agent check-in (docs/performance.md, "Fleet").
            "CONN_MAX_AGE": 600,
            # WAL lets the web server, the worker thread and CLI processes read while one writes;
            # IMMEDIATE transactions take the write lock up front instead of failing half-way.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(DATA_DIR / "test-uus.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = str(DATA_DIR / "static")
Path(STATIC_ROOT).mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # the embedded default serves static files without collectstatic
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CONFIG["session_cookie_secure"]
CSRF_COOKIE_SECURE = CONFIG["session_cookie_secure"]
SESSION_COOKIE_AGE = 12 * 3600
X_FRAME_OPTIONS = "DENY"

# Notification e-mail (deployments.notifications) goes through Django's mail machinery.
EMAIL_HOST = CONFIG["smtp_host"]
EMAIL_PORT = CONFIG["smtp_port"]
EMAIL_HOST_USER = CONFIG["smtp_user"]
EMAIL_HOST_PASSWORD = CONFIG["smtp_password"]
EMAIL_USE_TLS = CONFIG["smtp_starttls"]
DEFAULT_FROM_EMAIL = CONFIG["email_from"]
EMAIL_TIMEOUT = 30
SECURE_CONTENT_TYPE_NOSNIFF = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "uus.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["uus.accounts.permissions.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "uus.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "uus.api.errors.exception_handler",
    "DEFAULT_FILTER_BACKENDS": [],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "UUS API",
    "DESCRIPTION": "REST API of the Ubuntu Update Server. Errors always use one envelope: "
    '{"error": {"code", "message", "details"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "uus.core.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": CONFIG["log_level"]},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
