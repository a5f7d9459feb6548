"""`uus jobs list|show|run|cancel`."""

from __future__ import annotations

import json


def jobs_list(args) -> int:
    from uus.cli.output import print_json
    from uus.jobs.api.serializers import JobSerializer
    from uus.jobs.models import Job

    qs = Job.objects.defer("log").order_by("-created")
    if args.state:
        qs = qs.filter(state=args.state)
    jobs = qs[: args.limit]
    if args.json:
        print_json(JobSerializer(jobs, many=True).data)
    else:
        for j in jobs:
            print(f"{j.pk}  {j.state:9}  {j.created:%Y-%m-%d %H:%M}  {j.title}")
    return 0


def jobs_show(args) -> int:
    from uus.cli.main import CliError
    from uus.cli.output import print_json
    from uus.jobs.api.serializers import JobDetailSerializer
    from uus.jobs.models import Job

    job = Job.objects.filter(pk=args.id).first()
    if job is None:
        raise CliError(f"no job {args.id}")
    if args.json:
        print_json(JobDetailSerializer(job).data)
    else:
        print(f"{job.title} [{job.state}] {job.progress_done}/{job.progress_total or '?'}")
        print(job.log)
    return 0


def jobs_run(args) -> int:
    from uus.cli.output import print_json, run_job_with_progress
    from uus.jobs.api.serializers import JobSerializer
    from uus.jobs.services import dispatch

    kwargs = json.loads(args.kwargs) if args.kwargs else {}
    if args.queue:
        job = dispatch(args.name, kwargs=kwargs)
    else:
        job = run_job_with_progress(args.name, kwargs=kwargs)
    if args.json:
        print_json(JobSerializer(job).data)
    else:
        print(f"{job.pk} {job.state}")
    return 0


def jobs_cancel(args) -> int:
    from uus.jobs.models import Job
    from uus.jobs.services import job_cancel

    job = job_cancel(job=Job.objects.get(pk=args.id))
    print(f"{job.pk} {job.state}{' (cancel requested)' if job.is_cancel_requested else ''}")
    return 0


def register(sub) -> None:
    jobs = sub.add_parser("jobs", help="background jobs").add_subparsers(dest="verb", metavar="VERB")
    jobs.required = True
    p = jobs.add_parser("list", help="list recent jobs")
    p.add_argument("--state", default="")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=jobs_list)
    p = jobs.add_parser("show", help="show one job with its log")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=jobs_show)
    p = jobs.add_parser("run", help="run a registered job here with a progress bar (or --queue it)")
    p.add_argument("name", help="dotted job name, e.g. uus.jobs.tasks.selftest")
    p.add_argument("--kwargs", default="", help="JSON object of arguments")
    p.add_argument("--queue", action="store_true", help="queue for the worker instead of running here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=jobs_run)
    p = jobs.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("id")
    p.set_defaults(func=jobs_cancel)
