"""The scheduled job: syncs directories that are due (and only those), as queued jobs with progress."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from uus.directory import selectors, tasks
from uus.directory.models import DirectorySource
from uus.directory.secret_store import secret_write
from uus.jobs.models import Job
from uus.jobs.services import dispatch, job_claim, job_run

from .factories import expected_ous, machine_make, source_make

pytestmark = [pytest.mark.django_db, pytest.mark.ldap]
LONDON = "ou=London,ou=EMEA,ou=Hosts,dc=corp,dc=test"


def run_jobs() -> list[Job]:
    done = []
    while (job := job_claim(worker="test")) is not None:
        job_run(job)
        done.append(Job.objects.get(pk=job.pk))
    return done


def test_scheduled_sync_queues_only_directories_that_are_due(acceptance_ldap):
    for host in expected_ous()[LONDON]:
        machine_make(host)
    due = source_make(acceptance_ldap, name="due")
    recent = source_make(acceptance_ldap, name="recent")
    off = source_make(acceptance_ldap, name="off", is_enabled=False)
    DirectorySource.objects.filter(pk=recent.pk).update(last_sync_started=timezone.now() - timedelta(minutes=5))
    orphan = secret_write("left-over-secret")  # a password file no directory uses, old enough to go
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))

    dispatch(tasks.directories_sync_due)
    scheduler, *syncs = run_jobs()
    assert scheduler.state == "succeeded" and scheduler.result == {"queued": ["due"], "pruned": 1}
    assert [(j.kwargs["name"], j.state) for j in syncs] == [("due", "succeeded")]
    assert syncs[0].progress_done == syncs[0].progress_total > 0 and "matched" in syncs[0].log
    assert sorted(selectors.machines_in_ou(LONDON, source=due).values_list("hostname", flat=True)) == sorted(
        expected_ous()[LONDON]
    )
    assert not os.path.exists(orphan) and os.path.exists(due.bind_password_file)
    assert not recent.ous.exists() and not off.ous.exists()

    dispatch(tasks.directories_sync_due)  # again at once: nothing is due, nothing queued twice
    (again,) = run_jobs()
    assert again.result == {"queued": [], "pruned": 0}
