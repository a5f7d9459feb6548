"""`uus packages upload` with directories, --move and --publish, as real processes on the test database.

(server/tests/system/test_repos_cli.py covers the other verbs and the one-file contract.)
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .debs import COWSAY, HELLO, SL

pytestmark = pytest.mark.system


@pytest.fixture
def data_dir(settings, tmp_path):
    from uus.approvals.models import Ring

    # transactional tests start from an emptied database: the rings the migration makes come back
    Ring.objects.get_or_create(name="test", defaults={"position": 10})
    Ring.objects.get_or_create(name="production", defaults={"position": 100})
    settings.DATA_DIR = tmp_path / "d"
    settings.DATA_DIR.mkdir()
    yield settings.DATA_DIR
    subprocess.run(["gpgconf", "--homedir", str(settings.DATA_DIR / "gnupg"), "--kill", "gpg-agent"], check=False)


def test_a_directory_moved_in_and_published_in_one_command(uus_cli, data_dir, tmp_path):
    from uus.jobs.models import Job
    from uus.repos.models import PrivatePackage, RingRepository

    incoming = tmp_path / "incoming"
    (incoming / "sub").mkdir(parents=True)
    shutil.copy(HELLO, incoming)
    shutil.copy(SL, incoming / "sub")
    (incoming / "broken.deb").write_bytes(COWSAY.read_bytes()[:5000])
    (incoming / "notes.txt").write_text("not a package, not a .deb: left alone")
    assert (
        uus_cli("packages", "upload", "--ring", "production", str(incoming)).returncode == 1
    )  # --ring needs --publish

    done = uus_cli("packages", "upload", "--move", "--publish", "--ring", "production", str(incoming), "--json")
    assert done.returncode == 1, done.stderr  # one file was refused
    assert f"uus: {incoming / 'broken.deb'}: truncated" in done.stderr
    assert sorted(p["name"] for p in json.loads(done.stdout)) == ["hello", "sl"]
    assert sorted(str(p.relative_to(incoming)) for p in incoming.rglob("*") if p.is_file()) == [
        "broken.deb",
        "notes.txt",
    ]
    assert sorted(PrivatePackage.objects.values_list("name", flat=True)) == ["hello", "sl"]
    repo = RingRepository.objects.get(ring__name="production")
    assert repo.package_count == 2 and repo.suites[0]["suite"] == "uus-local"
    packages = (data_dir / "repos/production/dists/uus-local/main/binary-amd64/Packages").read_text()
    assert "Package: hello\n" in packages and "Package: sl\n" in packages
    # the test ring is published by the queued job, as after any upload
    assert list(Job.objects.filter(state="queued").values_list("kwargs__ring", flat=True)) == ["test"]


def test_publish_without_a_ring_publishes_every_ring_and_queues_nothing(uus_cli, data_dir):
    from uus.jobs.models import Job
    from uus.repos.models import RingRepository

    done = uus_cli("packages", "upload", "--publish", str(COWSAY))
    assert done.returncode == 0, done.stderr
    assert "uploaded cowsay 3.03+dfsg2-8 (all)" in done.stdout
    assert "production: published 1 packages" in done.stdout and "test: published 1 packages" in done.stdout
    assert COWSAY.exists()  # copied, not moved
    assert sorted(RingRepository.objects.values_list("ring__name", "package_count")) == [("production", 1), ("test", 1)]
    assert not Job.objects.filter(state="queued").exists()
    assert uus_cli("packages", "upload", "--publish", "--ring", "nope", str(HELLO)).returncode == 1
    assert not list((data_dir / "pool").rglob("*hello*"))


def test_an_own_key_imported_signs_and_the_old_one_overlaps(uus_cli, data_dir, tmp_path):
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "Org Key <repo@org.example>", "ed25519", "sign", "never"], check=True,
                   capture_output=True)  # fmt: skip
    secret = subprocess.run([*gpg, "--armor", "--export-secret-keys"], check=True, capture_output=True).stdout
    own = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "--list-keys"], capture_output=True,
                         text=True).stdout  # fmt: skip
    own_fpr = next(line.split(":")[9] for line in own.splitlines() if line.startswith("fpr:"))
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    key_file = tmp_path / "org.asc"
    key_file.write_bytes(secret)

    first = json.loads(uus_cli("repos", "key", "show", "--json").stdout)["fingerprint"]
    done = uus_cli("repos", "key", "import", str(key_file), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fingerprint": own_fpr, "overlap": [first], "key_url": "/repo/key.asc"}
    assert b"PRIVATE KEY" not in (done.stdout + done.stderr).encode()
    published = uus_cli("repos", "publish", "production")
    assert published.returncode == 0, published.stderr
    listed = subprocess.run(["gpg", "--show-keys", "--with-colons", str(data_dir / "repos/key.asc")],
                            capture_output=True, text=True).stdout  # fmt: skip
    assert {line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")} == {own_fpr, first}
    inrelease = data_dir / "repos/production/dists/uus-local/InRelease"
    keyring = tmp_path / "trusted.gpg"  # what a machine puts in signed-by
    keyring.write_bytes(subprocess.run(["gpg", "--dearmor"], input=(data_dir / "repos/key.asc").read_bytes(),
                                       capture_output=True, check=True).stdout)  # fmt: skip
    verified = subprocess.run(
        ["gpgv", "--status-fd", "1", "--keyring", str(keyring), str(inrelease)],
        capture_output=True,
        text=True,
    )
    assert f"VALIDSIG {own_fpr}" in verified.stdout and f"VALIDSIG {first}" in verified.stdout
    public_only = tmp_path / "public.asc"
    public_only.write_bytes((data_dir / "repos/key.asc").read_bytes())
    refused = uus_cli("repos", "key", "import", str(public_only))
    assert refused.returncode == 1 and "no usable secret signing key" in refused.stderr
