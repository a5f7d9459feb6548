"""`uus notices import|show|list`, `uus upstream add|sync|list`, `uus cves show`."""

from __future__ import annotations

import json
import sys


def notices_import(args) -> int:
    from uus.catalog import tasks
    from uus.cli.output import print_json, run_job_with_progress

    job = run_job_with_progress(
        tasks.notices_import, kwargs={"source": args.source}, title="Import notices", quiet=args.json
    )
    result = job.result
    if args.json:
        print_json(result)
    else:
        print(
            f"{result['imported']} new, {result['updated']} updated, {result['unchanged']} unchanged, "
            f"{len(result['failed'])} malformed"
        )
    for f in result["failed"]:
        print(f"malformed: {f['path']}: {f['reason']}", file=sys.stderr)
    if result["failed"]:  # the good files are stored; the exit status still tells scripts something was skipped
        print(f"uus: {len(result['failed'])} malformed file(s) skipped; the others were imported", file=sys.stderr)
        return 1
    return 0


def notices_show(args) -> int:
    from uus.catalog import selectors
    from uus.catalog.api.serializers import NoticeSerializer
    from uus.catalog.models import Notice
    from uus.cli.main import CliError
    from uus.cli.output import print_json

    try:
        notice = selectors.notice_get(args.id)
    except Notice.DoesNotExist:
        raise CliError(f"no notice {args.id}") from None
    data = NoticeSerializer(notice).data
    if args.json:
        print_json(data)
    else:
        print(f"{data['id']} ({data['priority'] or 'no priority'}) published {data['published']}")
        print(data["summary"])
        print("CVEs:", ", ".join(c["id"] for c in data["cves"]) or "none")
        for a in data["affected"]:
            pro = " [Ubuntu Pro]" if a["is_pro"] else ""
            print(f"  {a['ecosystem']:32} {a['source']:24} fixed in {a['fixed'] or '(no fix)'}{pro}")
    return 0


def notices_list(args) -> int:
    from uus.catalog import selectors
    from uus.catalog.api.serializers import NoticeListSerializer
    from uus.cli.output import print_json

    qs = selectors.notice_list(
        release=args.release,
        priority=args.priority,
        package=args.package,
        q=args.q,
        kind=args.kind,
        since=args.since or None,
        until=args.until or None,
    )
    qs = qs.prefetch_related("cves")
    if args.json:
        print_json(NoticeListSerializer(qs, many=True).data)
    else:
        for n in qs:
            print(f"{n.id:24} {n.priority or '-':10} {n.published:%Y-%m-%d}  {n.summary[:80]}")
    return 0


def upstream_add(args) -> int:
    from uus.catalog import services
    from uus.catalog.api.serializers import UpstreamSerializer
    from uus.cli.output import print_json

    split = lambda s: [p.strip() for p in s.split(",") if p.strip()]  # noqa: E731
    try:
        with open(args.keyring, "rb") as fh:
            keyring = fh.read()
    except OSError as exc:
        from uus.cli.main import CliError

        raise CliError(f"cannot read keyring {args.keyring}: {exc.strerror}") from exc
    upstream = services.upstream_add(
        name=args.name,
        url=args.url,
        suites=split(args.suites),
        components=split(args.components),
        architectures=split(args.architectures),
        keyring_data=keyring,
        replace=args.replace,
    )
    if args.json:
        print_json(UpstreamSerializer(upstream).data)
    else:
        print(f"upstream {upstream.name} added: {upstream.url} {','.join(upstream.suites)}")
    return 0


def upstream_sync(args) -> int:
    from uus.catalog import tasks
    from uus.catalog.models import Upstream
    from uus.cli.main import CliError
    from uus.cli.output import print_json, run_job_with_progress

    names = [args.name] if args.name else list(Upstream.objects.filter(is_enabled=True).values_list("name", flat=True))
    if args.name and not Upstream.objects.filter(name=args.name).exists():
        raise CliError(f"no upstream named {args.name}")
    results = {}
    for name in names:
        job = run_job_with_progress(
            tasks.upstream_sync,
            kwargs={"name": name},
            title=f"Sync {name}",
            locks=[f"upstream:{name}"],
            quiet=args.json,
        )
        results[name] = job.result
        if not args.json:
            r = job.result
            print(
                f"{name}: {r['indexes_changed']} index(es) changed, {r['indexes_unchanged']} unchanged, "
                f"{r['packages']} packages"
            )
    if args.json:
        print_json(results)
    return 0


def upstream_list(args) -> int:
    from uus.catalog.api.serializers import UpstreamSerializer
    from uus.catalog.models import Upstream
    from uus.cli.output import print_json

    ups = Upstream.objects.prefetch_related("indexes")
    if args.json:
        print_json(UpstreamSerializer(ups, many=True).data)
    else:
        for u in ups:
            state = f"error: {u.last_error}" if u.last_error else f"last success {u.last_success or 'never'}"
            print(f"{u.name:16} {u.url}  {state}")
    return 0


def cves_show(args) -> int:
    from uus.catalog import selectors
    from uus.catalog.api.serializers import CveFixSerializer, CveSerializer
    from uus.catalog.models import Cve
    from uus.cli.main import CliError
    from uus.cli.output import print_json

    try:
        cve = selectors.cve_get(args.id)
    except Cve.DoesNotExist:
        raise CliError(f"no CVE {args.id} in any imported notice") from None
    data = {**CveSerializer(cve).data, "fixes": CveFixSerializer(selectors.cve_fixes(cve), many=True).data}
    if args.json:
        print_json(data)
    else:
        print(json.dumps(data, indent=2, default=str))
    return 0


def register(sub) -> None:
    notices = sub.add_parser("notices", help="security notices (USN, Ubuntu CVE records)")
    nv = notices.add_subparsers(dest="verb", metavar="VERB")
    nv.required = True
    p = nv.add_parser(
        "import",
        help="import OSV JSON from a directory, a .tar.* archive, a file or a URL",
        description="Import OSV notices. Each malformed file is named on stderr with the reason and skipped; "
        "the others are imported, and the exit status is then 1.",
    )
    p.add_argument("source", metavar="PATH_OR_URL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=notices_import)
    p = nv.add_parser("show", help="one notice as stored")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=notices_show)
    p = nv.add_parser("list", help="notices, filtered")
    p.add_argument("--release", default="", help="22.04, jammy or an ecosystem such as Ubuntu:Pro:22.04:LTS")
    p.add_argument("--priority", default="", help="least priority: negligible, low, medium, high, critical")
    p.add_argument("--package", default="", help="source or binary package name")
    p.add_argument("--q", default="", help="a USN id, a CVE id or words of the summary")
    p.add_argument("--kind", default="", choices=["", "usn", "lsn", "cve"])
    p.add_argument("--since", default="", help="published on or after (YYYY-MM-DD or ISO date and time)")
    p.add_argument("--until", default="", help="published on or before (YYYY-MM-DD: that whole day, UTC)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=notices_list)

    up = sub.add_parser("upstream", help="upstream APT archives").add_subparsers(dest="verb", metavar="VERB")
    up.required = True
    p = up.add_parser("add", help="add an upstream archive")
    p.add_argument("name")
    p.add_argument("url", help="http://, https:// or file:// URL of the archive root")
    p.add_argument("--suites", required=True, help="comma-separated, e.g. jammy,jammy-updates,jammy-security")
    p.add_argument("--components", required=True, help="comma-separated, e.g. main,universe")
    p.add_argument("--architectures", default="amd64", help="comma-separated, e.g. amd64,arm64")
    p.add_argument("--keyring", required=True, help="OpenPGP keyring file that signs the archive")
    p.add_argument("--replace", action="store_true", help="change an existing upstream of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=upstream_add)
    p = up.add_parser("sync", help="sync one upstream (or every enabled one)")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=upstream_sync)
    p = up.add_parser("list", help="upstreams and their sync state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=upstream_list)

    cves = sub.add_parser("cves", help="CVEs").add_subparsers(dest="verb", metavar="VERB")
    cves.required = True
    p = cves.add_parser("show", help="a CVE with every notice that fixes it, per release")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cves_show)
