"""`uus packages ...` and `uus repos ...` as real processes on the test database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

DEBS = Path(__file__).resolve().parents[1] / "data" / "debs"


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "d"
    settings.DATA_DIR.mkdir()
    yield settings.DATA_DIR
    import subprocess

    subprocess.run(["gpgconf", "--homedir", str(settings.DATA_DIR / "gnupg"), "--kill", "gpg-agent"], check=False)


def test_upload_list_publish_key_and_remove(uus_cli, data_dir, tmp_path):
    from uus.approvals.models import Ring

    # transactional tests start from an emptied database: the rings the migration makes come back
    Ring.objects.get_or_create(name="test", defaults={"position": 10})
    Ring.objects.get_or_create(name="production", defaults={"position": 100})
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"!<arch>\nnot really")
    one = uus_cli("packages", "upload", str(DEBS / "hello_2.10-3_amd64.deb"), "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["filename"] == "pool/local/main/h/hello/hello_2.10-3_amd64.deb"
    refused = uus_cli("packages", "upload", str(bad), "--json")
    assert refused.returncode == 1 and refused.stdout == "" and "bad.deb" not in refused.stderr
    assert refused.stderr.startswith("uus: ") and "ar member" in refused.stderr
    many = uus_cli("packages", "upload", str(DEBS / "sl_5.02-1+b1_amd64.deb"), str(bad), "--json")
    assert many.returncode == 1 and f"uus: {bad}:" in many.stderr
    assert [p["name"] for p in json.loads(many.stdout)] == ["sl"]
    listed = json.loads(uus_cli("packages", "list", "--json").stdout)
    assert sorted(p["name"] for p in listed) == ["hello", "sl"]

    published = uus_cli("repos", "publish", "production", "--json")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)[0]["suites"][0] == {
        "suite": "uus-local", "components": ["main"], "architectures": ["amd64"], "packages": 2, "skipped": 0,
    }  # fmt: skip
    repos = {r["ring"]: r for r in json.loads(uus_cli("repos", "list", "--json").stdout)}
    assert repos["production"]["package_count"] == 2 and repos["production"]["last_published"]
    assert repos["test"]["last_published"] is None
    key = json.loads(uus_cli("repos", "key", "show", "--json").stdout)
    assert key["fingerprint"] == repos["production"]["fingerprint"] and key["key_url"] == "/repo/key.asc"
    rotated = json.loads(uus_cli("repos", "key", "rotate", "--json").stdout)
    assert rotated["overlap"] == [key["fingerprint"]] and rotated["fingerprint"] != key["fingerprint"]
    assert uus_cli("repos", "publish", "nope").returncode == 1

    removed = uus_cli("packages", "remove", "sl")
    assert removed.returncode == 0 and "removed sl 5.02-1+b1" in removed.stdout
    assert [p["name"] for p in json.loads(uus_cli("packages", "list", "--json").stdout)] == ["hello"]
