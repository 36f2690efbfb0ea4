"""Gunicorn settings shared by `spine-cds serve` and the Dockerfile (environment overrides)."""

import multiprocessing
import os

bind = os.environ.get("CDS_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("CDS_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("CDS_THREADS", "4"))
# Value sets and card templates load once in the master and are shared copy-on-write.
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# No query strings or headers in access logs: they could carry identifiers.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def worker_exit(server: object, worker: object) -> None:
    """Cards still queued for recording are written before a worker goes away."""
    from cds_service.store.card_log import flush_all

    flush_all()
