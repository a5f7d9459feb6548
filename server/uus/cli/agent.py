"""`uus agent publish|show`: the uus-agent package that machines install from this server."""

from __future__ import annotations


def agent_publish(args) -> int:
    from uus.cli.output import print_json
    from uus.repos.agent_package import agent_package_publish
    from uus.repos.api.serializers import PrivatePackageSerializer

    row, created = agent_package_publish()
    if args.json:
        print_json(PrivatePackageSerializer(row).data)
    else:
        verb = "published" if created else "already published:"
        print(f"{verb} {row.name} {row.version} ({row.architecture}) sha256 {row.sha256}")
    return 0


def agent_show(args) -> int:
    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.repos.agent_package import agent_package_current
    from uus.repos.api.serializers import PrivatePackageSerializer

    row = agent_package_current()
    if row is None:
        raise CliError("this server's agent version is not published yet: run `uus agent publish`")
    if args.json:
        print_json(PrivatePackageSerializer(row).data)
    else:
        print(f"{row.name} {row.version} ({row.architecture}) sha256 {row.sha256} in suite uus-local")
    return 0


def register(sub) -> None:
    agent = sub.add_parser("agent", help="the uus-agent package machines install from this server")
    verbs = agent.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for verb, func, text in (
        ("publish", agent_publish, "build this server's agent version and publish it in uus-local"),
        ("show", agent_show, "the published agent package"),
    ):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("--json", action="store_true", help="print the API's JSON")
        p.set_defaults(func=func)
