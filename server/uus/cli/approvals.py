"""`uus rings|approvals|updates|groups ...` and `uus machines set-ring`: the same JSON as the API."""

from __future__ import annotations


def _user(args):
    """CLI actions are recorded as done by the operating-system user running `uus`, via `--as`."""
    import getpass

    return getattr(args, "actor", None) or f"cli:{getpass.getuser()}"


def rings_list(args) -> int:
    from uus.approvals.api.serializers import RingSerializer
    from uus.approvals.selectors import ring_list
    from uus.cli.output import print_json

    data = RingSerializer(ring_list(), many=True).data
    if args.json:
        print_json(data)
    else:
        for r in data:
            print(
                f"{r['position']:4} {r['name']:20} {r['machines']:6} machines {r['approved']:6} approved  "
                f"{r['description']}"
            )
    return 0


def rings_create(args) -> int:
    from uus.approvals.api.serializers import RingSerializer
    from uus.approvals.services import ring_create
    from uus.cli.output import print_json

    ring = ring_create(name=args.name, position=args.position, description=args.description, user=_user(args))
    print_json(RingSerializer(ring).data) if args.json else print(f"ring {ring.name} created")
    return 0


def rings_promote(args) -> int:
    from uus.approvals import selectors
    from uus.approvals.api.serializers import ApprovalSerializer
    from uus.approvals.services import ring_promote
    from uus.cli.main import CliError
    from uus.cli.output import print_json

    ring = selectors.ring_get(args.ring)
    to_ring = selectors.ring_get(args.to) if args.to else selectors.ring_next(ring)
    if to_ring is None:
        raise CliError(f"ring '{ring.name}' is the last ring: name the ring to promote to with --to")
    out = ring_promote(ring=ring, to_ring=to_ring, names=args.package or (), comment=args.comment, user=_user(args))
    if args.json:
        print_json(ApprovalSerializer(out, many=True).data)
    else:
        print(f"{len(out)} versions approved for {to_ring.name}")
    return 0


def rings_rule_add(args) -> int:
    from uus.approvals.selectors import ring_get
    from uus.approvals.services import approval_rule_create
    from uus.cli.main import CliError

    if bool(args.auto_approve_security) == bool(args.promote_from):
        raise CliError("give either --auto-approve-security PRIORITY or --promote-from RING")
    if args.auto_approve_security:
        rule = approval_rule_create(
            ring=ring_get(args.ring),
            kind="auto_approve_security",
            min_priority=args.auto_approve_security,
            user=_user(args),
        )
    else:
        rule = approval_rule_create(
            ring=ring_get(args.ring),
            kind="auto_promote",
            from_ring=ring_get(args.promote_from),
            after_days=args.after_days,
            user=_user(args),
        )
    print(f"rule {rule.pk}: {rule}")
    return 0


def rings_rules(args) -> int:
    from uus.approvals.api.serializers import ApprovalRuleSerializer
    from uus.approvals.selectors import ring_get, rule_list
    from uus.cli.output import print_json

    rules = rule_list()
    if args.ring:
        rules = rules.filter(ring=ring_get(args.ring))
    if args.json:
        print_json(ApprovalRuleSerializer(rules, many=True).data)
    else:
        for rule in rules:
            print(f"{rule.pk:5} {rule.ring.name:16} {rule}{'' if rule.is_enabled else ' (disabled)'}")
    return 0


def rings_rule_delete(args) -> int:
    from uus.approvals.selectors import rule_get
    from uus.approvals.services import approval_rule_delete

    rule = rule_get(args.id)
    approval_rule_delete(rule=rule, user=_user(args), reason=args.reason)
    print(f"rule {args.id} deleted: {rule}")
    return 0


def machines_set_ring(args) -> int:
    from uus.approvals.selectors import ring_get
    from uus.approvals.services import machine_set_ring
    from uus.inventory.selectors import machine_get

    machine = machine_get(ident=args.machine)
    machine_set_ring(machine=machine, ring=ring_get(args.ring), user=_user(args), reason=args.reason)
    print(f"{machine.hostname} is in ring {args.ring}")
    return 0


def approvals_set(args) -> int:
    from uus.approvals.api.serializers import ApprovalSerializer
    from uus.approvals.selectors import ring_get
    from uus.approvals.services import approval_set
    from uus.cli.output import print_json

    approval = approval_set(
        ring=ring_get(args.ring),
        name=args.package,
        version=args.version,
        state=args.state,
        comment=args.comment,
        is_pinned=args.pin,
        user=_user(args),
    )
    if args.json:
        print_json(ApprovalSerializer(approval).data)
    else:
        print(f"{approval.name} {approval.version} {approval.state} for ring {args.ring}")
    return 0


def approvals_bulk(args) -> int:
    """The updates page's bulk decision: PACKAGE=VERSION items, or every update matching the filters."""
    from uus.approvals import selectors
    from uus.approvals.api.serializers import ApprovalSerializer
    from uus.approvals.services import approvals_set_bulk
    from uus.cli.main import CliError
    from uus.cli.output import print_json

    ring = selectors.ring_get(args.ring)
    items = []
    for item in args.items:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            raise CliError(f"'{item}' is not PACKAGE=VERSION")
        items.append((name, version))
    if args.pending:
        rows = selectors.updates_pending(ring=ring, state="pending", name=args.package)
        rows = selectors.updates_filter(rows, kind=args.kind, min_priority=args.min_priority)
        items += [(u.name, u.version) for u in rows]
    elif args.kind or args.min_priority or args.package:
        raise CliError("--kind, --min-priority and --package choose among pending updates: add --pending")
    if not items:
        raise CliError("nothing to decide: name PACKAGE=VERSION items, or --pending with filters that match")
    out = approvals_set_bulk(
        ring=ring, items=items, state=args.state, comment=args.comment, is_pinned=args.pin, user=_user(args)
    )
    if args.json:
        print_json(ApprovalSerializer(out, many=True).data)
    else:
        print(f"{len(out)} versions {args.state} for ring {ring.name}")
    return 0


def approvals_list(args) -> int:
    from uus.approvals import selectors
    from uus.approvals.api.serializers import ApprovalSerializer
    from uus.cli.output import print_json

    ring = selectors.ring_get(args.ring) if args.ring else None
    data = ApprovalSerializer(selectors.approval_list(ring=ring, state=args.state, name=args.package), many=True).data
    if args.json:
        print_json(data)
    else:
        for a in data:
            print(f"{a['ring']:12} {a['package']:30} {a['version']:30} {a['state']:9} {a['decided_by_name']}")
    return 0


def updates_list(args) -> int:
    from uus.approvals import selectors
    from uus.approvals.api.serializers import UpdateSerializer
    from uus.cli.output import print_json

    rows = selectors.updates_pending(ring=selectors.ring_get(args.ring), state=args.state, name=args.package)
    rows = selectors.updates_filter(rows, kind=args.kind, min_priority=args.min_priority)
    data = UpdateSerializer(rows, many=True).data
    if args.json:
        print_json(data)
    else:
        for u in data:
            sec = u["priority"] or ("security" if u["is_security"] else "-")
            print(f"{u['package']:30} {u['version']:30} {sec:10} {u['machines']:6} machines  {u['state']}")
    return 0


def groups_list(args) -> int:
    from uus.approvals.api.serializers import MachineGroupSerializer
    from uus.approvals.selectors import group_list
    from uus.cli.output import print_json

    data = MachineGroupSerializer(group_list(), many=True).data
    if args.json:
        print_json(data)
    else:
        for g in data:
            print(f"{g['name']:24} {g['kind']:7} {len(g['machines']):6} machines  {g['description']}")
    return 0


def groups_create(args) -> int:
    from uus.approvals.api.serializers import MachineGroupSerializer
    from uus.approvals.services import group_create
    from uus.cli.output import print_json
    from uus.inventory.selectors import machine_get

    kind = "ou" if args.ou else ("rule" if (args.release or args.hostname_pattern) else "manual")
    group = group_create(
        name=args.name,
        kind=kind,
        description=args.description,
        release=args.release or "",
        hostname_pattern=args.hostname_pattern or "",
        ou_dn=args.ou or "",
        machines=[machine_get(ident=m) for m in args.machine or []],
        user=_user(args),
    )
    print_json(MachineGroupSerializer(group).data) if args.json else print(f"group {group.name} created ({kind})")
    return 0


def groups_delete(args) -> int:
    from uus.approvals.selectors import group_get
    from uus.approvals.services import group_delete

    group_delete(group=group_get(args.name), user=_user(args))
    print(f"group {args.name} deleted")
    return 0


def groups_members(args) -> int:
    from uus.approvals.api.serializers import MachineGroupSerializer
    from uus.approvals.selectors import group_get
    from uus.approvals.services import group_members_set
    from uus.cli.output import print_json
    from uus.inventory.selectors import machine_get

    group = group_members_set(
        group=group_get(args.name),
        add=[machine_get(ident=m) for m in args.add or []],
        remove=[machine_get(ident=m) for m in args.remove or []],
        user=_user(args),
    )
    data = MachineGroupSerializer(group).data
    print_json(data) if args.json else print(f"group {group.name}: {', '.join(data['machines']) or 'no machines'}")
    return 0


def register_machines_set_ring(machines) -> None:
    """`uus machines set-ring HOSTNAME RING`, added to the `machines` noun by uus.cli.machines."""
    p = machines.add_parser("set-ring", help="put a machine in a ring (its repository follows)")
    p.add_argument("machine", metavar="HOSTNAME")
    p.add_argument("ring", metavar="RING")
    p.add_argument("--reason", default="")
    p.add_argument("--as", dest="actor", default=None, help="name recorded in the audit log")
    p.set_defaults(func=machines_set_ring)


def register(sub) -> None:
    rings = sub.add_parser("rings", help="rings: ordered deployment stages").add_subparsers(dest="verb", metavar="VERB")
    rings.required = True
    p = rings.add_parser("list", help="rings in promotion order")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rings_list)
    p = rings.add_parser("create", help="add a ring")
    p.add_argument("name")
    p.add_argument("--position", type=int, required=True, help="promotion order (test is 10, production 100)")
    p.add_argument("--description", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rings_create)
    p = rings.add_parser("promote", help="approve for the next ring what RING has approved")
    p.add_argument("ring")
    p.add_argument("--to", default=None, help="the ring to promote to (default: the next one)")
    p.add_argument("--package", action="append", help="only this package (repeatable)")
    p.add_argument("--comment", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rings_promote)

    p = rings.add_parser("rule-add", help="an automatic approval rule for RING (applied every 10 minutes)")
    p.add_argument("ring")
    p.add_argument("--auto-approve-security", metavar="PRIORITY", help="approve security updates of PRIORITY or above")
    p.add_argument("--promote-from", metavar="RING", help="approve what RING approved --after-days ago")
    p.add_argument("--after-days", type=int, default=7, help="days without a failed job in the other ring")
    p.set_defaults(func=rings_rule_add)

    p = rings.add_parser("rules", help="the automatic approval rules")
    p.add_argument("--ring", default="", help="only the rules of this ring")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=rings_rules)

    p = rings.add_parser("rule-delete", help="remove an approval rule (what it approved stays approved)")
    p.add_argument("id")
    p.add_argument("--reason", default="")
    p.add_argument("--as", dest="actor", default=None, help="name recorded in the audit log")
    p.set_defaults(func=rings_rule_delete)

    approvals = sub.add_parser("approvals", help="approve, decline or hold updates per ring").add_subparsers(
        dest="verb", metavar="VERB"
    )
    approvals.required = True
    p = approvals.add_parser("set", help="decide one package version for one ring")
    p.add_argument("ring", metavar="RING")
    p.add_argument("package", metavar="PACKAGE")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("state", metavar="approved|declined|held", choices=["approved", "declined", "held"])
    p.add_argument("--comment", default="")
    p.add_argument("--pin", action="store_true", help="with held: keep machines at this version on purpose")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=approvals_set)
    p = approvals.add_parser("bulk", help="one decision for many versions (the updates page's bulk action)")
    p.add_argument("ring", metavar="RING")
    p.add_argument("state", metavar="approved|declined|held", choices=["approved", "declined", "held"])
    p.add_argument("items", nargs="*", metavar="PACKAGE=VERSION")
    p.add_argument("--pending", action="store_true", help="also every pending update matching the filters")
    p.add_argument("--kind", default="", choices=["", "security", "regular"])
    p.add_argument("--min-priority", default="", help="with --pending: security updates of this priority or above")
    p.add_argument("--package", default="", help="with --pending: only this package")
    p.add_argument("--comment", default="")
    p.add_argument("--pin", action="store_true", help="with held: keep machines at these versions")
    p.add_argument("--as", dest="actor", default=None, help="name recorded in the audit log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=approvals_bulk)
    p = approvals.add_parser("list", help="decisions recorded")
    p.add_argument("--ring", default="")
    p.add_argument("--state", default="")
    p.add_argument("--package", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=approvals_list)

    updates = sub.add_parser("updates", help="newer upstream versions of installed packages").add_subparsers(
        dest="verb", metavar="VERB"
    )
    updates.required = True
    p = updates.add_parser("list", help="updates for a ring's machines, by priority and machines affected")
    p.add_argument("--ring", default="production")
    p.add_argument("--state", default="", help="pending, approved, declined or held")
    p.add_argument("--package", default="")
    p.add_argument("--kind", default="", choices=["", "security", "regular"])
    p.add_argument("--min-priority", default="", help="security updates of this priority or above")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=updates_list)

    groups = sub.add_parser("groups", help="machine groups").add_subparsers(dest="verb", metavar="VERB")
    groups.required = True
    p = groups.add_parser("list", help="groups with their machines")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=groups_list)
    p = groups.add_parser(
        "create", help="a manual group (--machine), a rule group (--release/--hostname-pattern) or an OU"
    )
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.add_argument("--machine", action="append", help="hostname (repeatable): a manual group")
    p.add_argument("--release", default=None)
    p.add_argument("--hostname-pattern", default=None, help="glob, e.g. web-*")
    p.add_argument("--ou", default=None, help="directory OU DN (includes the OUs below it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=groups_create)
    p = groups.add_parser("members", help="add or remove machines of a manual group")
    p.add_argument("name")
    p.add_argument("--add", action="append", metavar="HOSTNAME")
    p.add_argument("--remove", action="append", metavar="HOSTNAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=groups_members)
    p = groups.add_parser("delete", help="remove a group (its machines stay)")
    p.add_argument("name")
    p.add_argument("--as", dest="actor", default=None, help="name recorded in the audit log")
    p.set_defaults(func=groups_delete)
