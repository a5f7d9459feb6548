"""Which functions may run as jobs. Only @job functions can be dispatched: a job row names its
function by dotted path, and accepting arbitrary paths would let a job row run any code."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from uus.core.exceptions import UusError


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str
    func: Callable
    every: int | None  # seconds, for periodic jobs
    locks: tuple[str, ...]


REGISTRY: dict[str, JobSpec] = {}

# Modules whose @job functions exist; importing them fills REGISTRY. Apps add theirs here.
JOB_MODULES = [
    "uus.jobs.tasks",
    "uus.inventory.tasks",
    "uus.agentapi.tasks",
    "uus.catalog.tasks",
    "uus.repos.tasks",
    "uus.exposure.tasks",
    "uus.directory.tasks",
    "uus.deployments.tasks",
]


def job(title: str, *, every: int | None = None, locks: tuple[str, ...] = ()):
    """Mark a function `fn(ctx, **kwargs)` as a job. `every` (seconds) makes it periodic."""

    def wrap(func: Callable) -> Callable:
        name = f"{func.__module__}.{func.__qualname__}"
        REGISTRY[name] = JobSpec(name=name, title=title, func=func, every=every, locks=locks)
        func.job_name = name
        return func

    return wrap


def load_all() -> None:
    for mod in JOB_MODULES:
        importlib.import_module(mod)


def get(name: str) -> JobSpec:
    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise UusError(f"no job named '{name}'", code="unknown_job") from None
