"""A minimal Django project behind authgate: the user comes from `X-Remote-User`, trusted only
with a valid signed identity assertion (see `recipe/authgate.py`). Copy the AUTHGATE_* settings,
the two middleware lines and the backend into your project."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "change-me-recipe-only")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Refuses (403) an X-Remote-User without a valid assertion, before Django believes it.
    "recipe.authgate.AssertionMiddleware",
    # Logs the user in from X-Remote-User and keeps the session when the header is absent.
    "recipe.authgate.GatewayRemoteUserMiddleware",
]

AUTHENTICATION_BACKENDS = ["recipe.authgate.GatewayRemoteUserBackend"]

ROOT_URLCONF = "recipe.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

USE_TZ = True

# The gateway: where its public keys are, and what its tokens must say.
AUTHGATE_JWKS_URL = os.environ.get("AUTHGATE_JWKS_URL", "http://127.0.0.1:8080/_auth/jwks.json")
# `identity_headers.assertion.audience` (default: the gateway's `upstream.url`).
AUTHGATE_AUDIENCE = os.environ.get("AUTHGATE_AUDIENCE", "http://127.0.0.1:8000")
# `identity_headers.assertion.issuer` (default: the gateway's `server.public_url`).
AUTHGATE_ISSUER = os.environ.get("AUTHGATE_ISSUER", "http://127.0.0.1:8080")
# Django's name for the `identity_headers.assertion.header` (default X-Authgate-Assertion).
AUTHGATE_ASSERTION_META = "HTTP_X_AUTHGATE_ASSERTION"
