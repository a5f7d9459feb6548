"""`uus deployments create|show|list|cancel|retry|rollback`, `uus windows`, `uus audit list`."""

from __future__ import annotations

from uus.cli.approvals import _user


def _detail(deployment) -> dict:
    from uus.deployments.api.serializers import DeploymentDetailSerializer

    return DeploymentDetailSerializer(deployment).data


def _print(args, deployment) -> None:
    from uus.cli.output import print_json

    data = _detail(deployment)
    if args.json:
        print_json(data)
        return
    c = data["counts"]
    print(f"deployment {data['id']}: {data['action']} on {data['target']} [{data['state']}] {data['halted_reason']}")
    print(f"  {c['total']} machines: " + ", ".join(f"{k} {c[k]}" for k in c if k not in ("total",) and c[k]))
    for j in data.get("jobs", []):
        print(f"  {j['machine']:30} {j['state']:10} {j['type']:12} {' '.join(j['params'].get('packages', []))}")


def deployments_create(args) -> int:
    from uus.deployments.api.views import deployment_create_from

    deployment = deployment_create_from(
        {
            "target": args.target,
            "action": args.action,
            "packages": args.package or [],
            "at": args.at,
            "deadline": args.deadline,
            "window": args.window,
            "batch_size": args.batch_size,
            "failure_threshold": args.failure_threshold,
            "job_timeout_minutes": args.job_timeout_minutes,
            "comment": args.comment,
        },
        _user(args),
    )
    _print(args, deployment)
    return 0


def deployments_show(args) -> int:
    from uus.deployments.selectors import deployment_get

    _print(args, deployment_get(args.id))
    return 0


def deployments_list(args) -> int:
    from uus.cli.output import print_json
    from uus.deployments.api.serializers import DeploymentSerializer
    from uus.deployments.selectors import deployment_list

    data = DeploymentSerializer(deployment_list(state=args.state)[: args.limit], many=True).data
    if args.json:
        print_json(data)
    else:
        for d in data:
            print(f"{d['id']:6} {d['state']:10} {d['action']:17} {d['target']:30} {d['counts']['total']} machines")
    return 0


def deployments_jobs(args) -> int:
    """A machine's jobs (the machine page's table), or a deployment's, newest first."""
    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.deployments.api.serializers import MachineJobDetailSerializer, MachineJobSerializer
    from uus.deployments.models import MachineJob

    if not (args.machine or args.deployment):
        raise CliError("give --machine HOSTNAME or --deployment ID")
    qs = MachineJob.objects.select_related("machine").order_by("-created")
    if args.machine:
        from uus.inventory.selectors import machine_get

        qs = qs.filter(machine=machine_get(ident=args.machine))
    if args.deployment:
        qs = qs.filter(deployment_id=int(args.deployment))
    serializer = MachineJobDetailSerializer if args.output else MachineJobSerializer
    data = serializer(qs[: args.limit], many=True).data
    if args.json:
        print_json(data)
        return 0
    for j in data:
        changes = ", ".join(f"{c['name']} {c['before'] or '-'} -> {c['after'] or '-'}" for c in j["package_changes"])
        print(f"{j['deployment']:6} {j['machine']:24} {j['type'] or '-':12} {j['state']:10} {j['error']:14} {changes}")
        if args.output and j.get("output"):
            print("    " + j["output"].rstrip().replace("\n", "\n    "))
    return 0


def _act(fn_name):
    def run(args) -> int:
        from uus.deployments import services
        from uus.deployments.selectors import deployment_get

        out = getattr(services, fn_name)(deployment=deployment_get(args.id), user=_user(args), reason=args.reason)
        _print(args, out)
        return 0

    return run


def windows_create(args) -> int:
    from uus.cli.output import print_json
    from uus.deployments.api.serializers import MaintenanceWindowSerializer
    from uus.deployments.services import window_create

    days = [int(d) for d in args.weekdays.split(",") if d.strip()] if args.weekdays else []
    w = window_create(
        name=args.name,
        weekdays=days,
        start=args.start,
        duration_minutes=args.minutes,
        tz=args.timezone,
        user=_user(args),
    )
    print_json(MaintenanceWindowSerializer(w).data) if args.json else print(f"window {w.name} created")
    return 0


def windows_list(args) -> int:
    from uus.cli.output import print_json
    from uus.deployments.api.serializers import MaintenanceWindowSerializer
    from uus.deployments.selectors import window_list

    data = MaintenanceWindowSerializer(window_list(), many=True).data
    if args.json:
        print_json(data)
    else:
        for w in data:
            print(
                f"{w['name']:20} days {w['weekdays']} from {w['start']} for {w['duration_minutes']} min {w['timezone']}"
            )
    return 0


def audit_list(args) -> int:
    from uus.audit.api.serializers import AuditEventSerializer
    from uus.audit.selectors import audit_event_list
    from uus.cli.output import print_json

    data = AuditEventSerializer(audit_event_list(action=args.action, target=args.target)[: args.limit], many=True).data
    if args.json:
        print_json(data)
    else:
        for e in data:
            print(f"{e['time']}  {e['actor_name']:16} {e['action']:22} {e['target']}  {e['reason']}")
    return 0


def register(sub) -> None:
    from uus.deployments.choices import DeploymentAction

    dep = sub.add_parser("deployments", help="deployments and their jobs").add_subparsers(dest="verb", metavar="VERB")
    dep.required = True
    p = dep.add_parser("create", help="deploy to a target (default: the approved updates its machines need)")
    p.add_argument("--target", required=True, help="ring:NAME, group:NAME, ou:DN or machine:HOSTNAME[,HOSTNAME...]")
    p.add_argument(
        "--action",
        default=DeploymentAction.INSTALL_APPROVED,
        choices=[a for a in DeploymentAction.values if a != DeploymentAction.ROLLBACK],
    )
    p.add_argument("--package", action="append", help="name or name=version (repeatable)")
    p.add_argument("--at", default=None, help="start time, ISO 8601 (default: now)")
    p.add_argument("--deadline", default=None, help="after this time, run even outside the window")
    p.add_argument("--window", default=None, help="maintenance window name")
    p.add_argument("--batch-size", type=int, default=0, help="machines at once (default: all)")
    p.add_argument("--failure-threshold", type=int, default=None, help="halt at this %% of failed jobs")
    p.add_argument("--job-timeout-minutes", type=int, default=24 * 60)
    p.add_argument("--comment", default="")
    p.add_argument("--as", dest="actor", default=None, help="name recorded in the audit log")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=deployments_create)
    p = dep.add_parser("show", help="one deployment with its per-machine jobs")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=deployments_show)
    p = dep.add_parser("list", help="deployments, newest first")
    p.add_argument("--state", default="")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=deployments_list)
    p = dep.add_parser("jobs", help="jobs of a machine or of a deployment, with results")
    p.add_argument("--machine", default="", metavar="HOSTNAME")
    p.add_argument("--deployment", default="", metavar="ID")
    p.add_argument("--output", action="store_true", help="with the apt output")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=deployments_jobs)
    for verb, text in (
        ("cancel", "stop: jobs not delivered yet are canceled"),
        ("retry", "run failed and canceled machines again"),
        ("rollback", "return the machines to the versions they had before"),
    ):
        p = dep.add_parser(verb, help=text)
        p.add_argument("id")
        p.add_argument("--reason", default="")
        p.add_argument("--as", dest="actor", default=None)
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=_act(f"deployment_{verb}"))

    win = sub.add_parser("windows", help="maintenance windows").add_subparsers(dest="verb", metavar="VERB")
    win.required = True
    p = win.add_parser("create", help="a weekly window")
    p.add_argument("name")
    p.add_argument("--weekdays", required=True, help="0 = Monday ... 6 = Sunday, comma-separated")
    p.add_argument("--start", required=True, help="time of day, e.g. 22:00")
    p.add_argument("--minutes", type=int, required=True)
    p.add_argument("--timezone", default="UTC", help="IANA name (Europe/Berlin), or machine: each machine's own zone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=windows_create)
    p = win.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=windows_list)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="verb", metavar="VERB")
    audit.required = True
    p = audit.add_parser("list", help="events, newest first")
    p.add_argument("--action", default="", help="prefix, e.g. approval.")
    p.add_argument("--target", default="", help="prefix, e.g. machine:web-01")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=audit_list)
