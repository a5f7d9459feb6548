from rest_framework import status
from rest_framework.response import Response


class JobAccepted(Response):
    """202 for long operations: the body names the job to follow."""

    def __init__(self, job, request=None):
        url = f"/api/v1/jobs/{job.pk}/"
        if request is not None:
            url = request.build_absolute_uri(url)
        super().__init__({"job": url, "id": str(job.pk), "state": job.state}, status=status.HTTP_202_ACCEPTED)
