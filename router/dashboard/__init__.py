"""The dashboard: ``GET /dashboard``, one page that shows what the router does and learned.

The page is static HTML, a small script of ours and Chart.js 4.6.2 (MIT, vendored under
``static/vendor/chart.js`` with its licence), all shipped inside the package: no build step,
nothing fetched from the network. The script reads the read-only JSON endpoints under
``/dashboard/api/`` (``routes``), which answer with the same access rules as the API (an
API key sees its tenant's traffic; the operator's token, ``SIGNALROUTE_METRICS_TOKEN``, sees
every tenant's; without keys everyone sees everything).
"""

from router.dashboard.routes import routes

__all__ = ["routes"]
