"""`uus packages upload|list|remove`, `uus repos publish|list`, `uus repos key show|rotate|retire`,
`uus repos cache`."""

from __future__ import annotations


def packages_upload(args) -> int:
    """One file prints the stored package (as the API does); several print a list. Every file is
    checked before it is stored; a refused one is reported and the others still go in."""
    import sys

    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.repos import services
    from uus.repos.api.serializers import PrivatePackageSerializer

    for path in args.files:
        try:
            open(path, "rb").close()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if len(args.files) == 1:
        row, created = services.package_upload(path=args.files[0])
        outcomes = [services.UploadOutcome(path=args.files[0], package=row, created=created)]
    else:
        outcomes = services.packages_upload_many(paths=args.files)
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
    if args.json:
        data = PrivatePackageSerializer(rows, many=True).data
        print_json(data[0] if len(args.files) == 1 else data)
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


def repos_publish(args) -> int:
    from uus.approvals.models import Ring
    from uus.cli.output import print_json, run_job_with_progress
    from uus.repos import services, tasks

    names = [services.ring_get(args.ring).name] if args.ring else list(Ring.objects.values_list("name", flat=True))
    results = []
    for name in names:
        job = run_job_with_progress(
            tasks.repo_publish,
            kwargs={"ring": name},
            locks=[services.publish_lock(name)],
            title=f"Publish {name}",
            quiet=args.json,
        )
        results.append(job.result)
        if not args.json:
            r = job.result
            suites = ", ".join(f"{s['suite']} ({s['packages']})" for s in r["suites"])
            print(f"{name}: published {r['packages']} packages: {suites}")
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
    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.repos import services

    if args.action == "show":
        info = services.signing_key_info()
    elif args.action == "rotate":
        info = services.signing_key_rotate()
    else:
        if not args.fingerprint:
            raise CliError("uus repos key retire FINGERPRINT")
        info = services.signing_key_retire(args.fingerprint)
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
    p.add_argument("files", nargs="+", metavar="FILE.deb", help="the .deb file(s)")
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
    p = rsub.add_parser("key", help="the signing key: show, rotate (with overlap), retire an old key")
    p.add_argument("action", choices=["show", "rotate", "retire"])
    p.add_argument("fingerprint", nargs="?", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_key)
    p = rsub.add_parser("cache", help="pull-through cache statistics (--evict: enforce the size limit now)")
    p.add_argument("--evict", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=repos_cache)
