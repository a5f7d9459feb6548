"""Printing for CLI verbs: JSON exactly as the API returns it, or short text; progress bars."""

from __future__ import annotations

import json
import sys

from django.core.serializers.json import DjangoJSONEncoder


def print_json(data) -> None:
    json.dump(data, sys.stdout, cls=DjangoJSONEncoder, indent=2)
    sys.stdout.write("\n")


class ProgressBar:
    """A tqdm bar fed by a job's progress callback; silent when stderr is not a terminal unless forced."""

    def __init__(self, title: str, enabled: bool | None = None):
        from tqdm import tqdm

        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = tqdm(
            desc=title, total=None, unit="", file=sys.stderr, disable=not self.enabled, dynamic_ncols=True, leave=True
        )

    def __call__(self, done: int, total: int | None, message: str) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        if done != self.bar.n:
            self.bar.n = done
            self.bar.refresh()
        if message and not self.enabled:
            print(message, file=sys.stderr)
        elif message:
            self.bar.set_postfix_str(message[:60], refresh=True)

    def close(self) -> None:
        self.bar.close()


def run_job_with_progress(fn, *, kwargs=None, locks=(), title=None, quiet=False):
    """Run a job inline with a progress bar and return the finished Job; raises CliError on failure."""
    from uus.cli.main import CliError
    from uus.jobs.services import job_run_inline

    bar = ProgressBar(title or getattr(fn, "job_name", "job"), enabled=False if quiet else None)
    try:
        job = job_run_inline(fn, kwargs=kwargs, locks=locks, title=title, on_progress=bar)
    finally:
        bar.close()
    if job.state != "succeeded":
        raise CliError(f"{job.title} {job.state}: {job.error or 'see the job log'} (job {job.pk})")
    return job
