"""Writes items and logs each one the service acknowledged, in the write log's first format (loadtests/README.md).

Each 201 becomes one JSON line {"location": "/items/<id>", "expect": {...}} appended to the file named by
STACKPROBE_WRITE_LOG. The location is relative to the host, as the request's own path is: Locust sends
self.client.post("/items") to host + "/items", and the audit reads host + location.
"""

import json
import os
import uuid

from locust import FastHttpUser, constant, task

LOG = os.environ.get("STACKPROBE_WRITE_LOG")


def record(location: str, expect: dict) -> None:
    if not LOG:
        return
    # One write(2) of a whole line with O_APPEND: lines never tear.
    fd = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps({"location": location, "expect": expect}) + "\n").encode())
    finally:
        os.close(fd)


class Writer(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def write(self) -> None:
        value = uuid.uuid4().hex
        with self.client.post("/items", json={"value": value}, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
                return
            created = response.json()
            if created.get("value") != value:
                response.failure("the created item is not the one sent")
                return
            record(f"/items/{created['id']}", {"id": created["id"], "value": value})
