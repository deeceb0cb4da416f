"""A Locust plugin: a "Containers" tab in Locust's web UI with the watched containers' memory, CPU and kills.

Opt-in, in either of two ways (Locust's -f takes .py files, folders and URLs, not module names):

    locust -f loadtests,stackprobe/locust_ui.py           # from a checkout of stackprobe
    import stackprobe.locust_ui  # noqa: F401             # one line in a locustfile of your own

It watches one Compose project (--stackprobe-project, else STACKPROBE_PROJECT, else the project running
from the current folder) with stackprobe's Watcher and adds to Locust's own page, the way Locust's
examples/extend_web_ui.py does: a tab and its table (`extended_tabs`, `extended_tables` in the page's
template arguments), whose rows ride on the /stats/requests answer the page polls every 2 s while a test
runs (`extended_stats`). The same figures, as numbers with their sources, are at /stackprobe/containers.
Locust shows its tabs once a test has started. When no Docker engine answers, the tab says so and Locust
runs as usual. Without a web UI (--headless, a worker) the plugin does nothing.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from flask import Response, jsonify, request
from locust import events
from locust.env import Environment

from stackprobe.live import ENV_PROJECT, TABLE_COLUMNS, ContainerPanel

TAB_KEY = "stackprobe-containers"
TAB_TITLE = "Containers"
ROUTE = "/stackprobe/containers"


def _add_arguments(parser: Any, **_kwargs: Any) -> None:
    """Add --stackprobe-project to Locust's command line (kept off the web UI's start form)."""
    parser.add_argument(
        "--stackprobe-project",
        type=str,
        default=None,
        env_var=ENV_PROJECT,
        include_in_web_ui=False,
        help="Compose project whose containers the Containers tab shows "
        "(default: the one running from the current folder)",
    )


def _on_init(environment: Environment, **_kwargs: Any) -> None:
    """Start the panel (stopped when Locust quits) and add its tab, table and routes to the web UI, if any."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    options = environment.parsed_options
    panel = ContainerPanel(Path.cwd(), named=getattr(options, "stackprobe_project", None))
    panel.refresh()
    environment.events.quitting.add_listener(lambda **_: panel.close())
    web_ui.template_args["extended_tabs"] = [
        *web_ui.template_args.get("extended_tabs", []),
        {"title": TAB_TITLE, "key": TAB_KEY},
    ]
    web_ui.template_args["extended_tables"] = [
        *web_ui.template_args.get("extended_tables", []),
        {"key": TAB_KEY, "structure": [{"key": key, "title": title} for key, title in TABLE_COLUMNS]},
    ]

    @web_ui.app.route(ROUTE)
    @web_ui.auth_required_if_enabled  # behind --web-login like Locust's own routes
    def stackprobe_containers() -> Response:
        return jsonify(panel.document())

    @web_ui.app.after_request
    def add_container_rows(response: Response) -> Response:
        # Locust's page polls /stats/requests and shows each `extended_stats` entry in the tab of its key.
        if not request.path.endswith("/stats/requests") or response.status_code != 200 or not response.is_json:
            return response
        body = response.get_json()
        body["extended_stats"] = [
            *[s for s in body.get("extended_stats") or [] if s.get("key") != TAB_KEY],
            {"key": TAB_KEY, "data": panel.rows()},
        ]
        response.set_data(json.dumps(body))
        return response


def install() -> None:
    """Register the plugin's listeners on Locust's events; importing stackprobe.locust_ui calls it once."""
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)


if __name__ == "stackprobe.locust_ui":
    install()
else:
    # Named by path with -f, Locust loads this file as a module of another name: the package's own module
    # installs the listeners, so naming the plugin twice (by path and by import) installs them once.
    importlib.import_module("stackprobe.locust_ui")
