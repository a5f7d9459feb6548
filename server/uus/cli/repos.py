"""`uus packages upload|list|remove`, `uus repos publish|list`, `uus repos key show|rotate|import|retire`,
`uus repos cache`."""

from __future__ import annotations


def _upload_paths(given: list[str]) -> list[str]:
    """The files named, a directory standing for every .deb below it (sorted)."""
    from pathlib import Path

    from uus.cli.main import CliError

    paths = []
    for name in given:
        path = Path(name)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.deb") if p.is_file())
            if not found:
                raise CliError(f"no .deb files in {name}")
            paths += found
            continue
        try:
            open(path, "rb").close()
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from exc
        paths.append(name)
    return paths


def packages_upload(args) -> int:
    """One file prints the stored package (as the API does); several, or a directory, print a list.
    Every file is checked before anything is stored; a refused one is reported and the others
    still go in (one transaction, one publish queued). --publish publishes here and waits, as
    `uus repos publish` does (every ring, or --ring's)."""
    import sys

    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.repos import services

    paths = _upload_paths(args.files)
    single = len(args.files) == 1 and len(paths) == 1 and paths[0] == args.files[0]
    if args.ring and not args.publish:
        raise CliError("--ring goes with --publish")
    if args.ring:
        services.ring_get(args.ring)  # a wrong name is refused before anything is stored
    queue = not args.publish  # the rings published here need no queued job (the others get one below)
    if single:  # a refusal is the command's error (stderr, exit 1), as for every other verb
        (outcome,) = services.packages_upload_many(paths=paths, publish=queue, move=args.move)
        if outcome.exception is not None:
            raise outcome.exception
        outcomes = [outcome]
    else:
        outcomes = services.packages_upload_many(paths=paths, publish=queue, move=args.move)
    rows, failed = [], 0
    for o in outcomes:
        if o.error:
            print(f"uus: {o.path}: {o.error}", file=sys.stderr)
            failed += 1
            continue
        rows.append(o.package)
        if not args.json:
            verb = "uploaded" if o.created else "already present:"
            print(f"{verb} {o.package.name} {o.package.version} ({o.package.architecture}) sha256 {o.package.sha256}")
    if args.publish:
        here = _ring_names(args.ring)
        _publish_rings(here, quiet=args.json)
        if any(o.created for o in outcomes):
            for name in set(_ring_names("")) - set(here):
                services.repos_publish_soon(name)
    if args.json:
        from uus.repos.api.serializers import PrivatePackageSerializer  # DRF: only when printing JSON

        data = PrivatePackageSerializer(rows, many=True).data
        print_json(data[0] if single else data)
    return 1 if failed else 0


def packages_list(args) -> int:
    from uus.cli.output import print_json
    from uus.repos.api.serializers import PrivatePackageSerializer
    from uus.repos.models import PrivatePackage

    rows = PrivatePackage.objects.all()
    if args.json:
        print_json(PrivatePackageSerializer(rows, many=True).data)
    else:
        for p in rows:
            print(f"{p.id:6} {p.name:32} {p.version:24} {p.architecture:8} {p.size:>10}  {p.sha256[:16]}")
    return 0


def packages_remove(args) -> int:
    from uus.cli.main import CliError
    from uus.repos import services
    from uus.repos.models import PrivatePackage

    qs = PrivatePackage.objects.filter(name=args.name)
    if args.version:
        qs = qs.filter(version=args.version)
    if args.architecture:
        qs = qs.filter(architecture=args.architecture)
    rows = list(qs)
    if not rows:
        raise CliError(f"no private package {args.name} {args.version or ''}".strip())
    for row in rows:
        services.package_remove(package=row)
        print(f"removed {row.name} {row.version} ({row.architecture})")
    return 0


def _ring_names(ring: str) -> list[str]:
    from uus.approvals.models import Ring
    from uus.repos import services

    return [services.ring_get(ring).name] if ring else list(Ring.objects.values_list("name", flat=True))


def _publish_rings(names: list[str], *, quiet: bool) -> list[dict]:
    """Publish rings here and now (as the job would), printing one line each unless quiet."""
    from uus.cli.output import run_job_with_progress
    from uus.repos import services, tasks

    results = []
    for name in names:
        job = run_job_with_progress(
            tasks.repo_publish,
            kwargs={"ring": name},
            locks=[services.publish_lock(name)],
            title=f"Publish {name}",
            quiet=quiet,
        )
        results.append(job.result)
        if not quiet:
            r = job.result
            suites = ", ".join(f"{s['suite']} ({s['packages']})" for s in r["suites"])
            print(f"{name}: published {r['packages']} packages: {suites}")
    return results


def repos_publish(args) -> int:
    from uus.cli.output import print_json

    results = _publish_rings(_ring_names(args.ring), quiet=args.json)
    if args.json:
        print_json(results)
    return 0


def repos_list(args) -> int:
    from uus.cli.output import print_json
    from uus.repos import services
    from uus.repos.api.serializers import RepositorySerializer

    data = RepositorySerializer(services.repositories_overview(), many=True).data
    if args.json:
        print_json(data)
    else:
        for r in data:
            when = r["last_published"] or "never published"
            print(f"{r['ring']:16} {r['url']:24} {r['package_count']:>7} packages  {when}")
    return 0


def repos_key(args) -> int:
    import sys

    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.repos import services

    if args.action == "show":
        info = services.signing_key_info()
    elif args.action == "rotate":
        info = services.signing_key_rotate()
    elif args.action == "import":
        if not args.target:
            raise CliError("uus repos key import FILE (an armored secret key without passphrase; - for stdin)")
        try:
            data = sys.stdin.buffer.read() if args.target == "-" else open(args.target, "rb").read()
        except OSError as exc:
            raise CliError(f"cannot read {args.target}: {exc.strerror}") from exc
        info = services.signing_key_import(data)
    else:
        if not args.target:
            raise CliError("uus repos key retire FINGERPRINT")
        info = services.signing_key_retire(args.target)
    if args.json:
        print_json(info)
    else:
        print(f"fingerprint: {info['fingerprint']}")
        for f in info["overlap"]:
            print(f"overlap:     {f} (still published and co-signing)")
        print(f"public key:  {info['key_url']}")
    return 0


def repos_cache(args) -> int:
    from uus.cli.output import print_json
    from uus.repos import services

    result = services.cache_evict() if args.evict else services.cache_stats()
    if args.json:
        print_json(result)
    else:
        for k, v in result.items():
            print(f"{k:14} {v}")
    return 0


def register(sub) -> None:
    pkgs = sub.add_parser("packages", help="private .deb packages (suite uus-local, component main)")
    psub = pkgs.add_subparsers(dest="verb", metavar="VERB")
    psub.required = True
    p = psub.add_parser("upload", help="upload .deb files, each validated as dpkg would")
    p.add_argument("files", nargs="+", metavar="FILE.deb", help="the .deb file(s), or directories of them")
    p.add_argument(
        "--publish", action="store_true", help="then publish every ring now and wait (instead of queueing a publish)"
    )
    p.add_argument("--ring", default="", help="with --publish: publish only this ring now (the others are queued)")
    p.add_argument(
        "--move",
        action="store_true",
        help="hand the files over: hard-linked into the pool where possible and removed once stored (refused"
        " ones stay); do not write them any more",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=packages_upload)
    p = psub.add_parser("list", help="list private packages")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=packages_list)
    p = psub.add_parser("remove", help="remove a private package (every version unless given)")
    p.add_argument("name")
    p.add_argument("version", nargs="?", default="")
    p.add_argument("--architecture", default="")
    p.set_defaults(func=packages_remove)

    repos = sub.add_parser("repos", help="the per-ring APT repositories under /repo/")
    rsub = repos.add_subparsers(dest="verb", metavar="VERB")
    rsub.required = True
    p = rsub.add_parser("publish", help="publish one ring's repository now (default: every ring)")
    p.add_argument("ring", nargs="?", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_publish)
    p = rsub.add_parser("list", help="rings, suites, counts and last publish")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_list)
    p = rsub.add_parser("key", help="the signing key: show, rotate (with overlap), import your own, retire an old key")
    p.add_argument("action", choices=["show", "rotate", "import", "retire"])
    p.add_argument(
        "target", nargs="?", default="", metavar="FINGERPRINT|FILE", help="retire: the key; import: its file"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_key)
    p = rsub.add_parser("cache", help="pull-through cache statistics (--evict: enforce the size limit now)")
    p.add_argument("--evict", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_cache)
