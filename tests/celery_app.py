"""A celery application for the worker-pool tests: kombu's filesystem transport, results in files.

``celery --app tests.celery_app worker`` reads its folder from ``$CELERY_FOLDER``;
the test process builds the same application with ``make_app(folder)`` to send tasks.
The task module (tests/celery_tasks.py) opens the stores at import, in the
worker's main process, before the prefork pool forks its children.
"""

from __future__ import annotations

import os

from celery import Celery


def make_app(folder: str) -> Celery:
    queue, results, control = (os.path.join(folder, name) for name in ("queue", "results", "control"))
    for path in (queue, results, control):
        os.makedirs(path, exist_ok=True)
    app = Celery("nbs_pool", broker="filesystem://", backend=f"file://{results}", include=["tests.celery_tasks"])
    app.conf.update(broker_transport_options={"data_folder_in": queue, "data_folder_out": queue,
                                              "control_folder": control},
                    worker_enable_remote_control=False, task_serializer="json", result_serializer="json",
                    accept_content=["json"], broker_connection_retry_on_startup=True)
    return app


app = make_app(os.environ["CELERY_FOLDER"]) if "CELERY_FOLDER" in os.environ else Celery("nbs_pool")
