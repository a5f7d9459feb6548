"""Loaded first (pytest.ini `-p uus.testing.datadir`), before Django reads its settings: a test run
without UUS_DATA_DIR (scripts/test sets one) gets a data directory of its own, removed at the end, so
that two runs at once in one checkout never share, or delete, each other's test database."""

import atexit
import os
import shutil
import tempfile

if "UUS_DATA_DIR" not in os.environ:
    os.environ["UUS_DATA_DIR"] = tempfile.mkdtemp(prefix="uus-pytest-")
    atexit.register(shutil.rmtree, os.environ["UUS_DATA_DIR"], ignore_errors=True)
