"""`uus directory add|sync|list|show|test|remove|map|unmap|ous|unmatched`: LDAP directories.

The bind password is only ever read from a file (``--password-file FILE``, or ``-`` for stdin), never
from the command line, where every user of the host could read it in the process list.
"""

from __future__ import annotations

import sys


def _read_password(path: str) -> str:
    from uus.cli.main import CliError

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read the password file {path}: {exc.strerror}") from None
    # A trailing line break is the file's, not the password's (echo pw > file).
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise CliError(f"the password file {path} is empty")
    return text


def _read_ca(path: str) -> str:
    from uus.cli.main import CliError

    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the CA certificate {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _options(args) -> dict:
    opts = {
        "ou_filter": args.ou_filter,
        "computer_filter": args.computer_filter,
        "user_filter": args.user_filter,
        "group_filter": args.group_filter,
        "hostname_attributes": _split(args.hostname_attributes),
        "login_attributes": _split(args.login_attributes),
        "member_attributes": _split(args.member_attributes),
        "page_size": args.page_size,
        "timeout_seconds": args.timeout,
        "sync_interval_minutes": args.sync_interval,
    }
    if args.no_schedule:
        opts["is_enabled"] = False
    if args.no_login:
        opts["is_login_enabled"] = False
    if args.allow_plaintext_login:
        opts["is_plaintext_login_allowed"] = True
    return {k: v for k, v in opts.items() if v is not None}


def directory_add(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors, services
    from uus.directory.api.serializers import DirectorySourceSerializer
    from uus.directory.models import DirectorySource

    password = _read_password(args.password_file) if args.password_file else ""
    ca = _read_ca(args.ca_file) if args.ca_file else None
    if args.replace and DirectorySource.objects.filter(name=args.name).exists():
        changes = {"url": args.url, "base_dn": args.base_dn, "start_tls": args.start_tls, **_options(args)}
        if args.bind_dn is not None:
            changes["bind_dn"] = args.bind_dn
        if ca is not None:
            changes["ca_certificate"] = ca
        source = services.directory_source_update(
            source=selectors.directory_source_get(args.name), bind_password=password or None, **changes
        )
        verb = "changed"
    else:
        source = services.directory_source_create(
            name=args.name,
            url=args.url,
            base_dn=args.base_dn,
            bind_dn=args.bind_dn or "",
            bind_password=password,
            start_tls=args.start_tls,
            ca_certificate=ca or "",
            **_options(args),
        )
        verb = "added"
    if not args.no_test:
        result = services.directory_source_test(source=source)
        state = "ok" if result["ok"] else "FAILED"
        print(f"connection test {state}: {result['message']}", file=sys.stderr)
    if args.json:
        print_json(DirectorySourceSerializer(source).data)
    else:
        print(
            f"directory {source.name} {verb}: {source.url}, base {source.base_dn}; "
            f"run `uus directory sync {source.name}`"
        )
    return 0


def _print_sync(name: str, r: dict) -> None:
    what = "would" if r["dry_run"] else "did"
    print(
        f"{name}: {r['ous']['total']} OUs, {r['computers']['total']} computers, {r['groups']['total']} groups; "
        f"{r['machines']['matched']} machines placed, {r['machines']['unmatched']} without a directory object, "
        f"{r['computers_without_machine']} computer objects without a machine"
    )
    for kind in ("ous", "computers", "groups", "placements"):
        c = r[kind]
        if c["added"] or c["changed"] or c["removed"]:
            print(f"  {kind}: {what} add {c['added']}, change {c['changed']}, remove {c['removed']}")
    if r["accounts"]["suspended"]:
        print(f"  {what} suspend: {', '.join(r['accounts']['suspended'])}")
    for line in r["accounts"]["role_changed"]:
        print(f"  role: {line}")
    if r["warnings"]:
        print(f"  {r['warnings']} warning(s), e.g.: {r['warning_examples'][0]}")
    if r["dry_run"]:
        print("  dry run: nothing was written")


def directory_sync(args) -> int:
    from uus.cli.main import CliError
    from uus.cli.output import print_json, run_job_with_progress
    from uus.directory import selectors, tasks
    from uus.directory.models import DirectorySource

    if args.name:
        names = [selectors.directory_source_get(args.name).name]
    else:
        names = list(DirectorySource.objects.filter(is_enabled=True).values_list("name", flat=True))
        if not names:
            raise CliError("no enabled directory to sync; add one with `uus directory add`")
    results, failed = {}, []
    for name in names:
        try:
            job = run_job_with_progress(
                tasks.directory_sync,
                kwargs={"name": name, "dry_run": args.dry_run, "allow_empty": args.allow_empty},
                title=f"{'Dry run of' if args.dry_run else 'Sync'} directory {name}",
                locks=[tasks.sync_lock(name)],
                quiet=args.json,
            )
        except CliError as exc:
            print(f"uus: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        results[name] = job.result
        if not args.json:
            _print_sync(name, job.result)
    if args.json:
        print_json(results)
    return 1 if failed else 0


def directory_list(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors
    from uus.directory.api.serializers import DirectorySourceSerializer

    sources = selectors.directory_source_list().prefetch_related("role_mappings")
    if args.json:
        print_json(DirectorySourceSerializer(sources, many=True).data)
        return 0
    for s in sources:
        state = f"error: {s.last_error}" if s.last_error else f"last success {s.last_success or 'never'}"
        counts = s.last_counts
        summary = f"{counts.get('ous', 0)} OUs, {counts.get('machines_matched', 0)} machines placed" if counts else ""
        print(f"{s.name:16} {s.url:36} {s.base_dn}  {summary}  {state}".rstrip())
    return 0


def directory_show(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors
    from uus.directory.api.serializers import DirectorySourceSerializer

    data = DirectorySourceSerializer(selectors.directory_source_get(args.name)).data
    if args.json:
        print_json(data)
    else:
        for key, value in data.items():
            if key == "role_mappings":
                value = (
                    "; ".join(
                        f"{m['group_dn']} -> {m['role']}{' in ' + m['scope_ou_dn'] if m['scope_ou_dn'] else ''}"
                        for m in value
                    )
                    or "none"
                )
            print(f"{key:28} {value}")
    return 0


def directory_test(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors, services

    result = services.directory_source_test(source=selectors.directory_source_get(args.name))
    if args.json:
        print_json(result)
    elif result["ok"]:
        print(result["message"])
    else:
        print(f"uus: connection test failed: {result['message']}", file=sys.stderr)
    return 0 if result["ok"] else 1


def directory_remove(args) -> int:
    from uus.directory import selectors, services

    services.directory_source_delete(source=selectors.directory_source_get(args.name))
    print(f"directory {args.name} removed")
    return 0


def directory_map(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors, services
    from uus.directory.api.serializers import RoleMappingSerializer

    mapping = services.role_mapping_set(
        source=selectors.directory_source_get(args.name), group_dn=args.group_dn, role=args.role, scope_ou_dn=args.ou
    )
    if args.json:
        print_json(RoleMappingSerializer(mapping).data)
    else:
        scope = f" on machines in {mapping.scope_ou_dn}" if mapping.scope_ou_dn else ""
        print(f"members of {mapping.group_dn} log in as {mapping.role}{scope}")
    return 0


def directory_unmap(args) -> int:
    from uus.cli.main import CliError
    from uus.directory import ldapclient, selectors, services

    source = selectors.directory_source_get(args.name)
    try:
        key = ldapclient.dn_key(args.group_dn)
    except ldapclient.DirectoryConfigError as exc:
        raise CliError(str(exc)) from None
    mapping = source.role_mappings.filter(group_dn_key=key).first()
    if mapping is None:
        raise CliError(f"directory {source.name} has no mapping for {args.group_dn}")
    services.role_mapping_delete(mapping=mapping)
    print(f"mapping of {mapping.group_dn} removed")
    return 0


def directory_ous(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors
    from uus.directory.api.serializers import OrganizationalUnitSerializer

    if args.json:
        print_json(OrganizationalUnitSerializer(selectors.ou_list(source=args.source or None), many=True).data)
        return 0
    for n in selectors.ou_tree(source=args.source or None):
        print(f"{'  ' * n.depth}{n.name:{max(1, 40 - 2 * n.depth)}} {n.machine_count:6} machines  {n.dn}")
    return 0


def directory_unmatched(args) -> int:
    from uus.cli.output import print_json
    from uus.directory import selectors

    source = selectors.directory_source_get(args.name)
    machines = list(selectors.machines_unmatched().order_by("hostname").values_list("hostname", flat=True))
    computers = list(selectors.computers_unmatched(source=source).order_by("hostname").values_list("dn", flat=True))
    if args.json:
        print_json({"machines": machines, "computers": computers})
        return 0
    print(f"{len(machines)} machine(s) without a directory object:")
    for m in machines:
        print(f"  {m}")
    print(f"{len(computers)} computer object(s) of {source.name} without a machine:")
    for c in computers:
        print(f"  {c}")
    return 0


def register(sub) -> None:
    d = sub.add_parser("directory", help="LDAP directories: OUs, machine placement, logins").add_subparsers(
        dest="verb", metavar="VERB"
    )
    d.required = True

    p = d.add_parser("add", help="add an LDAP directory (defaults fit OpenLDAP and Active Directory)")
    p.add_argument("name")
    p.add_argument("url", help="ldap://HOST[:PORT] (with --start-tls for TLS) or ldaps://HOST[:PORT]")
    p.add_argument("--base-dn", required=True, metavar="DN", help="where OUs, computers and people are read")
    p.add_argument("--bind-dn", metavar="DN", help="the service account (anonymous if not given)")
    p.add_argument("--password-file", metavar="FILE", help="file holding the bind password ('-': stdin)")
    p.add_argument("--start-tls", action="store_true", help="upgrade ldap:// to TLS with StartTLS")
    p.add_argument("--ca-file", metavar="FILE", help="PEM CA certificate to trust (default: the system's)")
    p.add_argument("--ou-filter", metavar="FILTER")
    p.add_argument("--computer-filter", metavar="FILTER")
    p.add_argument("--user-filter", metavar="FILTER")
    p.add_argument("--group-filter", metavar="FILTER")
    p.add_argument("--hostname-attributes", metavar="A,B", help="default dNSHostName,associatedDomain,cn")
    p.add_argument("--login-attributes", metavar="A,B", help="default uid,sAMAccountName")
    p.add_argument("--member-attributes", metavar="A,B", help="default member,uniqueMember")
    p.add_argument("--page-size", type=int, metavar="N", help="entries per paged search (default 500)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per connection and answer (default 10)")
    p.add_argument("--sync-interval", type=int, metavar="MINUTES", help="scheduled sync interval (default 60)")
    p.add_argument("--no-schedule", action="store_true", help="sync only on demand")
    p.add_argument("--no-login", action="store_true", help="do not let people log in through this directory")
    p.add_argument(
        "--allow-plaintext-login", action="store_true", help="allow logins over ldap:// without TLS (tests only)"
    )
    p.add_argument("--replace", action="store_true", help="change the directory of that name if it exists")
    p.add_argument("--no-test", action="store_true", help="do not test the connection after adding")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    p.set_defaults(func=directory_add)

    p = d.add_parser("sync", help="read OUs, computers and groups; place machines in OUs")
    p.add_argument("name", nargs="?", default="", help="one directory (default: every enabled one)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--allow-empty", action="store_true", help="accept a directory that now returns nothing")
    p.add_argument("--json", action="store_true", help="print the sync results as JSON")
    p.set_defaults(func=directory_sync)

    p = d.add_parser("list", help="directories and their sync state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=directory_list)

    for verb, func, text in (
        ("show", directory_show, "one directory's settings and state (never the password)"),
        ("test", directory_test, "connect, bind and look up the base DN"),
        ("remove", directory_remove, "remove a directory, its OUs and placements"),
        ("unmatched", directory_unmatched, "machines without a directory object and computers without a machine"),
    ):
        p = d.add_parser(verb, help=text)
        p.add_argument("name")
        if verb != "remove":
            p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = d.add_parser("map", help="give members of a directory group a UUS role")
    p.add_argument("name")
    p.add_argument("group_dn", metavar="GROUP_DN")
    p.add_argument("role", choices=["admin", "operator", "auditor"])
    p.add_argument("--ou", default="", metavar="DN", help="limit the role to machines in this OU and below")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=directory_map)

    p = d.add_parser("unmap", help="remove the role mapping of a group")
    p.add_argument("name")
    p.add_argument("group_dn", metavar="GROUP_DN")
    p.set_defaults(func=directory_unmap)

    p = d.add_parser("ous", help="the OU tree with machine counts (sub-OUs included)")
    p.add_argument("--source", default="", metavar="NAME", help="only this directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=directory_ous)
