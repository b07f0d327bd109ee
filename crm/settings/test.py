"""Test settings: the base settings, plus fast password hashing and generous throttling."""
import os

from .base import *  # noqa: F401,F403
from .base import CACHES, REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min"}}
# Parallel test processes (pytest-xdist) share Redis: give each its own key space.
CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": f"stratum-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests call tasks in process unless a test starts a real worker (tests/workers.py), which
# switches this off for its own duration.
CELERY_TASK_ALWAYS_EAGER = True
