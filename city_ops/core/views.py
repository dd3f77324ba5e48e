import posixpath
from pathlib import PurePosixPath

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.views.static import serve

from .metrics import metrics_render
from .roles import Role, user_roles

# A folder of files that only a permission-checked view may serve (the roads agent's unblurred originals,
# `roads/originals/...`): the raw media URL refuses any path through a folder of this name.
PRIVATE_MEDIA_DIR = "originals"


def metrics_view(request):
    """Prometheus scrape endpoint. Metrics name no people or places, so it is open like /healthz; put it
    behind the proxy's network rules in production (docs/deploy.md)."""
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4")


def media_serve(request, path: str, document_root=None):
    """MEDIA_URL under the local settings (DEBUG; production serves no media at all): for the admin's file
    links, so for admins only, and never an unblurred original (that is served by its own view, which checks
    the role and the retention period and audits each viewing).

    Every other reader gets media through the view for its row (a work order's photo, a blurred inspection
    photo, a pickup photo), each of which restricts by user; this URL bypasses those checks, hence admins."""
    if PRIVATE_MEDIA_DIR in PurePosixPath(posixpath.normpath(path).lstrip("/")).parts:
        raise Http404("not served here")
    if Role.ADMIN not in user_roles(request.user):
        raise PermissionDenied
    return serve(request, path, document_root=document_root)
