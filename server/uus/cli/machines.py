"""`uus machines list|show|packages|history|revoke`: the same filters and JSON as /api/v1/machines/."""

from __future__ import annotations


def _filters(args) -> dict[str, str]:
    from uus.inventory.filter_params import PARAMS

    out = {}
    for p in PARAMS:
        value = getattr(args, p.name, None)
        if value is None or value is False:
            continue
        out[p.name] = "true" if value is True else str(value)
    return out


def machines_list(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import MachineSerializer
    from uus.inventory.filters import MachineFilterSet
    from uus.inventory.selectors import machine_list

    qs = MachineFilterSet(_filters(args)).filter(machine_list())
    if args.limit:
        qs = qs[: args.limit]
    if args.json:
        print_json(MachineSerializer(qs, many=True).data)
        return 0
    for m in qs:
        seen = f"{m.last_seen:%Y-%m-%d %H:%M}" if m.last_seen else "never"
        flags = " ".join(
            f
            for f, on in (("reboot", m.is_reboot_required), ("revoked", m.is_revoked), ("clone?", m.is_clone_suspected))
            if on
        )
        print(f"{m.hostname:30} {m.os_id:7} {m.release:8} {m.package_count:6} pkgs  seen {seen}  {flags}".rstrip())
    return 0


def _machine(ident: str):
    from uus.inventory.selectors import machine_get

    return machine_get(ident=ident)  # MachineNotFound is a UusError: printed, exit 1


def machines_show(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import MachineDetailSerializer

    machine = _machine(args.machine)
    data = MachineDetailSerializer(machine).data
    if args.json:
        print_json(data)
    else:
        for key, value in data.items():
            print(f"{key:26} {value}")
    return 0


def machines_packages(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import InstalledPackageSerializer
    from uus.inventory.selectors import machine_packages

    rows = machine_packages(machine=_machine(args.machine), search=args.q)
    data = InstalledPackageSerializer(rows, many=True).data
    if args.json:
        print_json(data)
    else:
        for p in data:
            print(f"{p['name']}:{p['architecture']:8} {p['version']:30} {p['source']} {p['status']}")
    return 0


def machines_history(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import InventoryChangeSerializer
    from uus.inventory.selectors import machine_history

    data = InventoryChangeSerializer(machine_history(machine=_machine(args.machine))[: args.limit], many=True).data
    if args.json:
        print_json(data)
    else:
        for change in data:
            for c in change["packages"]:
                print(
                    f"{change['time']}  {c['kind']:10} {c['name']}:{c['architecture']}  {c['old_version'] or '-'} "
                    f"-> {c['new_version'] or '-'}"
                )
    return 0


def machines_revoke(args) -> int:
    from uus.cli.output import print_json
    from uus.inventory.api.serializers import MachineDetailSerializer
    from uus.inventory.services import machine_revoke

    machine = machine_revoke(machine=_machine(args.machine))
    if args.json:
        print_json(MachineDetailSerializer(machine).data)
    else:
        print(f"revoked {machine.hostname} ({machine.uuid}): its agent can no longer check in")
    return 0


def register(sub) -> None:
    from uus.inventory.filter_params import PARAMS

    machines = sub.add_parser("machines", help="registered machines").add_subparsers(dest="verb", metavar="VERB")
    machines.required = True
    p = machines.add_parser("list", help="list machines (filters as in /api/v1/machines/)")
    for param in PARAMS:
        flag = "--" + param.name.replace("_", "-")
        if param.kind == "bool":
            p.add_argument(
                flag, dest=param.name, nargs="?", const=True, default=None, metavar="true|false", help=param.help
            )
        else:
            p.add_argument(flag, dest=param.name, default=None, help=param.help)
    p.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    p.set_defaults(func=machines_list)
    for verb, func, text in (
        ("show", machines_show, "one machine with its facts"),
        ("packages", machines_packages, "a machine's installed packages"),
        ("history", machines_history, "a machine's package changes, newest first"),
        ("revoke", machines_revoke, "void a machine's credentials"),
    ):
        p = machines.add_parser(verb, help=text)
        p.add_argument("machine", metavar="HOSTNAME", help="hostname, FQDN or id of the machine")
        p.add_argument("--json", action="store_true", help="print the API's JSON")
        if verb == "packages":
            p.add_argument("-q", default="", help="only names or sources containing this")
        if verb == "history":
            p.add_argument("--limit", type=int, default=50, help="the newest N inventory changes (default 50)")
        p.set_defaults(func=func)
    from uus.cli.approvals import register_machines_set_ring

    register_machines_set_ring(machines)
