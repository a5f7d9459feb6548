"""/repo/ (what apt reads, no login) and the repository pages of the UI. Thin: services do the work."""

from __future__ import annotations

import os
import re
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from uus.core.exceptions import UusError
from uus.web.decorators import role_required

from . import selectors, services
from .models import PrivatePackage

_RING_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
# the internal location of a front server that serves pool files from disk, e.g. /_uus_pool/
_ACCEL_RE = re.compile(r"^/[A-Za-z0-9_][A-Za-z0-9_/-]*/$")
CONTENT_TYPES = {".deb": "application/vnd.debian.binary-package", ".gz": "application/gzip", ".xz": "application/x-xz"}


class _Slice:
    """A file object reading one byte range, for 206 answers."""

    def __init__(self, fh, start: int, length: int):
        fh.seek(start)
        self.fh, self.left = fh, length

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fh.close()


def _send_file(request, path: Path, content_type: str) -> HttpResponse:
    """A static file with Last-Modified/ETag, 304 for conditional GETs and 206 for one range."""
    fh = open(path, "rb")
    st = os.fstat(fh.fileno())
    etag = f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
    last_modified = formatdate(int(st.st_mtime), usegmt=True)
    inm = request.headers.get("If-None-Match")
    ims = request.headers.get("If-Modified-Since")
    not_modified = False
    if inm is not None:
        not_modified = etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    elif ims:
        try:
            not_modified = int(st.st_mtime) <= parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            not_modified = False
    if not_modified:
        fh.close()
        resp = HttpResponseNotModified()
        resp["ETag"], resp["Last-Modified"] = etag, last_modified
        return resp
    start, length, status = 0, st.st_size, 200
    rng = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if rng and (not if_range or if_range in (etag, last_modified)):
        m = _RANGE_RE.match(rng.strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), st.st_size - 1) if m.group(2) else st.st_size - 1
            else:
                start = max(0, st.st_size - int(m.group(2)))
                end = st.st_size - 1
            if start >= st.st_size or end < start:
                fh.close()
                resp = HttpResponse(status=416)
                resp["Content-Range"] = f"bytes */{st.st_size}"
                return resp
            length, status = end - start + 1, 206
    body = _Slice(fh, start, length) if status == 206 else fh
    if request.method == "HEAD":
        fh.close()
        resp = HttpResponse(status=status, content_type=content_type)
    else:
        resp = FileResponse(body, status=status, content_type=content_type)
    resp["Content-Length"] = str(length)
    if status == 206:
        resp["Content-Range"] = f"bytes {start}-{start + length - 1}/{st.st_size}"
    resp["Accept-Ranges"] = "bytes"
    resp["ETag"], resp["Last-Modified"] = etag, last_modified
    return resp


@require_http_methods(["GET", "HEAD"])
def key_asc(request):
    data = services.public_key_armored()
    resp = HttpResponse(data if request.method == "GET" else b"", content_type="application/pgp-keys")
    resp["Content-Length"] = str(len(data))
    return resp


@require_http_methods(["GET", "HEAD"])
def repo_file(request, ring: str, path: str):
    """A file of a ring's APT repository: dists/... from the live tree, pool/... from the pool
    (fetched from upstream on first request)."""
    path = unquote(path)  # apt sends '+' as %2b
    if not _RING_RE.fullmatch(ring):
        raise Http404("no such repository")
    if path.startswith("pool/"):
        try:
            stored = services.pool_serve(ring, path)
        except services.UpstreamFetchFailed as exc:
            return HttpResponse(exc.message, status=502, content_type="text/plain")
        except UusError as exc:
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
        if stored is None:
            raise Http404("not in this repository")
        accel = request.headers.get("X-UUS-Accel-Pool", "")
        if _ACCEL_RE.fullmatch(accel):  # a front server serves the stored file itself (docs/deploy-nginx.md)
            resp = HttpResponse(content_type=CONTENT_TYPES[".deb"])
            resp["X-Accel-Redirect"] = accel + stored.relative_to(services.pool_root()).as_posix()
            return resp
        return _send_file(request, stored, CONTENT_TYPES[".deb"])
    found = services.dists_file(ring, path)
    if found is None:
        raise Http404("not in this repository")
    return _send_file(request, found, CONTENT_TYPES.get(found.suffix, "text/plain; charset=utf-8"))


# --------------------------------------------------------------------------- UI


@login_required
@require_GET
def repository_list(request):
    return render(
        request,
        "repos/repository_list.html",
        {
            "repositories": services.repositories_overview(),
            "key": services.signing_key_info(),
            "stats": services.cache_stats(),
        },
    )


@role_required("operator")
@require_POST
def repository_publish(request, ring):
    ring_obj = get_object_or_404(services.Ring, name=ring)
    jobs = services.repos_publish_soon(ring_obj, user=request.user)
    if jobs:
        return redirect("web:job_detail", pk=jobs[0].pk)
    messages.info(request, f"a publish of {ring} is already queued")
    return redirect("repos:repository_list")


@login_required
@require_GET
def package_list(request):
    packages = list(PrivatePackage.objects.defer("fields"))
    installs = selectors.private_package_installs(packages)
    return render(
        request,
        "repos/package_list.html",
        {
            "rows": [(p, installs[p.pk]) for p in packages],
            "max_mb": services.settings.UUS["upload_max_mb"],
        },
    )


@role_required("operator")
@require_POST
def package_upload(request):
    """The upload form (and the drag-and-drop zone, which posts the same form)."""
    files = request.FILES.getlist("file")
    if not files:
        messages.error(request, "choose a .deb file to upload")
        return redirect("repos:package_list")
    with services.upload_spool(files) as paths:
        outcomes = services.packages_upload_many(paths=paths, user=request.user)
    for f, o in zip(files, outcomes, strict=True):
        if o.error:
            messages.error(request, f"{f.name}: {o.error}")
            continue
        verb = "uploaded" if o.created else "already present:"
        messages.success(request, f"{verb} {o.package.name} {o.package.version} ({o.package.architecture})")
    return redirect("repos:package_list")


@role_required("operator")
@require_POST
def package_remove(request, pk):
    package = get_object_or_404(PrivatePackage, pk=pk)
    services.package_remove(package=package)
    messages.success(request, f"removed {package.name} {package.version}; the repositories are being republished")
    return redirect("repos:package_list")
