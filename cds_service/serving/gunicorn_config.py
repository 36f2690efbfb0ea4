"""Gunicorn settings shared by `spine-cds serve` and the Dockerfile (environment overrides).

Gunicorn imports this module in the master before it loads the app, which is what lets it switch
prometheus_client to multiprocess mode: the variable must be set before prometheus_client is imported.
"""

import gc
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cds_service.serving.worker import assign_slot, release_slot

bind = os.environ.get("CDS_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("CDS_WORKERS", multiprocessing.cpu_count()))
# gthread, except that a request is read whole in the event loop before a thread takes it: slow
# clients cannot hold the threads (cds_service/serving/worker.py).
worker_class = "cds_service.serving.worker.ReadAheadWorker"
threads = int(os.environ.get("CDS_THREADS", "4"))
# Value sets and card templates load once in the master and are shared copy-on-write.
preload_app = True
timeout = 30
# Graceful shutdown: on SIGTERM the master closes the listening socket at once, workers stop accepting
# and finish the requests they hold for up to this many seconds, then exit. Keep it below the
# orchestrator's grace period (Kubernetes terminationGracePeriodSeconds, default 30 s).
graceful_timeout = int(os.environ.get("CDS_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# No control socket (gunicorn >= 25 would create ~/.gunicorn/gunicorn.ctl): the service writes
# nothing outside its working directory, and is managed by signals (SIGTERM, SIGHUP) instead.
control_socket_disable = True
# Worker heartbeats on tmpfs: a container's overlay /tmp can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
# No query strings or headers in access logs: they could carry identifiers.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# Metrics from every worker: prometheus_client keeps samples in files in this folder.
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_metrics_dir_is_ours = not os.environ.get(_METRICS_ENV)
if _metrics_dir_is_ours:
    os.environ[_METRICS_ENV] = tempfile.mkdtemp(prefix="cds-metrics-")


def on_starting(server: Any) -> None:
    """Samples left by an earlier run in a configured folder would be added to this run's."""
    folder = Path(os.environ[_METRICS_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def pre_fork(server: Any, worker: Any) -> None:
    """The preloaded app (value sets, templates, modules) moves to the permanent generation before
    each fork: the workers' garbage collector never scans it again (fewer pauses per call) and
    copy-on-write pages stay shared. The worker gets its slot in the connection table."""
    gc.freeze()
    assign_slot(server, worker)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges must not be reported any more (its counters stay counted), and
    its slot in the connection table is free again."""
    from prometheus_client import multiprocess

    release_slot(worker)
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if _metrics_dir_is_ours:
        shutil.rmtree(os.environ[_METRICS_ENV], ignore_errors=True)


def worker_exit(server: object, worker: object) -> None:
    """Cards still queued for recording are written before a worker goes away."""
    from cds_service.store.card_log import flush_all

    flush_all()
