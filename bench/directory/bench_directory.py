"""Directory benchmark: `uus directory sync` of a generated directory (default 50,000 computer objects in
500 OUs) served by a real slapd, into a UUS that knows as many machines.

    .venv/bin/python bench/directory/bench_directory.py [--computers 50000] [--ous 500] [--machines N]
                                                      [--page-size 500] [--database-url URL]

The directory is loaded offline with slapadd (ldapadd of 50,000 entries takes minutes; slapadd seconds),
then served by slapd through uus.testing.slapd.SlapdServer. Machines are bulk-inserted (their
inventories do not matter here). Measured: the first sync (everything new: 500 OUs, 50,000 computer
objects, ~150,000 placements) and a second sync with nothing changed, each as a whole `uus` process.
Target: first sync < 60 s. Prints its figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import REPO, run_uus, scratch_env

SERVER = REPO / "server"
BASE = "dc=bench,dc=test"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PW = "bench-secret-pw"
REGIONS = 10

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
{modules}
pidfile @DIR@/slapd.pid
argsfile @DIR@/slapd.args
database mdb
maxsize 2147483648
dbnosync
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {db}
index objectClass eq
"""


def ou_dns(ous: int) -> list[tuple[str, str]]:
    """(dn, name) of ``ous`` OUs: ou=Hosts, REGIONS regions below it, and sites below the regions."""
    out = [(f"ou=Hosts,{BASE}", "Hosts")]
    regions = min(REGIONS, max(0, ous - 1))
    for r in range(regions):
        out.append((f"ou=Region{r:02d},ou=Hosts,{BASE}", f"Region{r:02d}"))
    for s in range(max(0, ous - 1 - regions)):
        r = s % regions
        out.append((f"ou=Site{s:03d},ou=Region{r:02d},ou=Hosts,{BASE}", f"Site{s:03d}"))
    return out


def leaf_ous(ous: int) -> list[str]:
    dns = ou_dns(ous)
    return [dn for dn, _ in dns if dn.startswith("ou=Site")] or [dn for dn, _ in dns]


def hostname(i: int) -> str:
    return f"host{i:06d}"


def fqdn(i: int) -> str | None:
    """Every other computer carries a DNS name (associatedDomain, like AD's dNSHostName)."""
    return f"{hostname(i)}.bench.test" if i % 2 == 0 else None


def generate_ldif(path: Path, *, computers: int, ous: int) -> None:
    """Write the directory: the suffix, the OU tree, and computers spread evenly over the leaf OUs."""
    leaves = leaf_ous(ous)
    with open(path, "w") as fh:
        fh.write(f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Bench\ndc: bench\n\n")
        for dn, name in ou_dns(ous):
            fh.write(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n\n")
        for i in range(computers):
            name, dns = hostname(i), fqdn(i)
            fh.write(f"dn: cn={name},{leaves[i % len(leaves)]}\nobjectClass: device\n")
            if dns:
                fh.write(f"objectClass: domainRelatedObject\nassociatedDomain: {dns}\n")
            fh.write(f"cn: {name}\n\n")


def _modules() -> str:
    for d in ("/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"):
        if os.path.exists(os.path.join(d, "back_mdb.la")) or os.path.exists(os.path.join(d, "back_mdb.so")):
            return f"modulepath {d}\nmoduleload back_mdb"
    return ""


def load_directory(work: Path, ldif: Path) -> Path:
    """slapadd the LDIF into work/db; returns a slapd.conf template (``@DIR@``) serving that database."""
    db = work / "db"
    db.mkdir(parents=True)
    text = _CONF.format(modules=_modules(), base=BASE, root_dn=ROOT_DN, root_pw=ROOT_PW, db=db)
    conf = work / "slapadd.conf"
    conf.write_text(text.replace("@DIR@", str(work)))
    slapadd = shutil.which("slapadd") or "/usr/sbin/slapadd"
    r = subprocess.run([slapadd, "-q", "-f", str(conf), "-l", str(ldif)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"slapadd failed: {r.stderr.strip()[-1000:]}")
    os.chmod(work, 0o755)
    template = work / "slapd.conf.in"
    template.write_text(text)
    return template


_MAKE_MACHINES = """
import os, sys, django, secrets
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uus.settings")
django.setup()
from uus.inventory.models import Machine
n = int(sys.argv[1])
rows = []
for i in range(n):
    host = f"host{i:06d}"
    rows.append(Machine(hostname=host, fqdn=f"{host}.bench.test" if i % 2 == 0 else host,
                        client_id=f"m-bench-{i}", secret_hash="x"))
Machine.objects.bulk_create(rows, batch_size=5000)
print(Machine.objects.count())
"""


def main() -> None:
    from uus.testing.slapd import SlapdServer  # stdlib only; the server package is on sys.path below

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--computers", type=int, default=50000)
    ap.add_argument("--ous", type=int, default=500)
    ap.add_argument("--machines", type=int, default=None, help="machines in UUS (default: as many as computers)")
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    machines = args.computers if args.machines is None else args.machines

    with tempfile.TemporaryDirectory(prefix="uus-bench-directory-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        t0 = time.perf_counter()
        ldif = work / "bench.ldif"
        generate_ldif(ldif, computers=args.computers, ous=args.ous)
        template = load_directory(work / "ldap", ldif)
        print(
            f"directory: {args.computers} computers in {args.ous} OUs generated and slapadd-ed in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        env = scratch_env(work / "srv", args.database_url)
        run_uus(["directory", "list"], env)  # migrate outside the measurement
        python = str(Path(sys.executable))
        r = subprocess.run(
            [python, "-c", _MAKE_MACHINES, str(machines)],
            env={**env, "PYTHONPATH": str(SERVER)},
            capture_output=True,
            text=True,
        )
        if r.returncode:
            raise SystemExit(f"creating machines failed: {r.stderr[-1000:]}")
        pw = work / "pw"
        pw.write_text(ROOT_PW)
        with SlapdServer(config_template=template, suffix=BASE, root_pw=ROOT_PW) as server:
            run_uus(
                [
                    "directory",
                    "add",
                    "bench",
                    server.url,
                    "--base-dn",
                    BASE,
                    "--bind-dn",
                    ROOT_DN,
                    "--password-file",
                    str(pw),
                    "--page-size",
                    str(args.page_size),
                    "--no-test",
                ],
                env,
            )
            first_s, first_mb, proc = run_uus(["directory", "sync", "bench", "--json"], env)
            first = json.loads(proc.stdout)["bench"]
            again_s, _again_mb, proc = run_uus(["directory", "sync", "bench", "--json"], env)
            again = json.loads(proc.stdout)["bench"]
        result = {
            "computers": first["computers"]["total"],
            "ous": first["ous"]["total"],
            "machines": machines,
            "machines_matched": first["machines"]["matched"],
            "placements": first["placements"]["total"],
            "first_sync_seconds": round(first_s, 2),
            "first_sync_peak_mb": first_mb,
            "unchanged_sync_seconds": round(again_s, 2),
            "unchanged_sync_changes": sum(
                again[k]["added"] + again[k]["changed"] + again[k]["removed"]
                for k in ("ous", "computers", "groups", "placements")
            ),
        }
        print(
            f"first sync: {result['computers']} computers, {result['ous']} OUs, {result['machines_matched']} "
            f"machines placed ({result['placements']} placements) in {result['first_sync_seconds']} s, "
            f"peak {first_mb} MB (target < 60 s)",
            flush=True,
        )
        print(
            f"second sync (nothing changed): {result['unchanged_sync_seconds']} s, "
            f"{result['unchanged_sync_changes']} changes",
            flush=True,
        )
        print(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, str(SERVER))
    main()
