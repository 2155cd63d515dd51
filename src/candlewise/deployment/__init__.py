"""The phased rollout: pre-deployment checks (``checks``, an adapter), health checks while a
deployment runs (``health``), a phase's validation (``validation``), the metrics both judge
(``metrics``) and the deployment session itself (``session``).

``health`` and ``validation`` are plain Python (no SQL, HTTP or terminal); import the modules
directly (``from candlewise.deployment.checks import run_checks``): this package imports
nothing on its own, so the light modules stay light.
"""
