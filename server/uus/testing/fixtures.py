"""pytest plugin: people with each role, API clients, the CLI run as a real process against the test
database, and a headless Chromium. Real services only: nothing here fakes apt, gpg, slapd or PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]  # repository root
PASSWORD = "correct-horse-battery-staple"
CHROMIUM = os.environ.get("UUS_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def make_user(db):
    from uus.accounts.services import user_create

    def make(role: str, username: str | None = None):
        return user_create(username=username or f"{role}-user", password=PASSWORD, role=role)

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user("admin")


@pytest.fixture
def operator_user(make_user):
    return make_user("operator")


@pytest.fixture
def auditor_user(make_user):
    return make_user("auditor")


@pytest.fixture
def api_client_for(db):
    """api_client_for(user) -> a DRF client sending that user's real API token."""
    from rest_framework.test import APIClient

    from uus.accounts.services import api_token_create

    def make(user=None):
        client = APIClient()
        if user is not None:
            _, key = api_token_create(user=user, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


def database_url() -> str:
    """A URL for the database the tests are using right now, for child processes."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s.get('PASSWORD') or ''}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("UUS_") or k.startswith("UUS_TEST_")}
    env.update({"UUS_DATA_DIR": str(settings.DATA_DIR), "UUS_DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def uus_command() -> list[str]:
    exe = Path(sys.executable).with_name("uus")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "uus.cli.main"]


@pytest.fixture
def uus_cli(transactional_db):
    """Run `uus ...` as a real process on the test database; returns CompletedProcess."""

    def run(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 120):
        return subprocess.run(
            [*uus_command(), *args],
            input=input,
            capture_output=True,
            text=True,
            env=child_env(**(env or {})),
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.fail(f"chromium is missing at {CHROMIUM}: scripts/install-system-deps installs it")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser(chromium_path):
    """Debian's chromium, headless, driven by Playwright (which ships no browser here)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:  # Playwright gives each launch a fresh temporary profile
        b = pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    p.set_default_timeout(15000)
    yield p
    context.close()
