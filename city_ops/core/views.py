from django.http import HttpResponse

from .metrics import metrics_render


def metrics_view(request):
    """Prometheus scrape endpoint. Metrics name no people or places, so it is open like /healthz; put it
    behind the proxy's network rules in production (docs/deploy.md)."""
    return HttpResponse(metrics_render(), content_type="text/plain; version=0.0.4")
