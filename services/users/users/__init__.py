"""The users service: a Flask app on PostgreSQL, built by `create_app`."""

from __future__ import annotations

import logging
import os
import sys
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from flask import Flask

from . import db, drain, errors, openapi, routes
from .config import ConfigError, Settings, load_settings
from .jsonprovider import OrjsonProvider

__all__ = ["ConfigError", "Settings", "create_app"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, with `test_config` taking precedence over it.

    `test_config` may hold the environment's setting names (DATABASE_URL, DB_POOL_SIZE, ...) and Flask
    config keys (TESTING, ...). Raises ConfigError when no usable database is configured.
    """
    overrides = dict(test_config or {})
    environ = ChainMap({key: str(value) for key, value in overrides.items()}, os.environ)
    settings = load_settings(environ)

    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length)
    app.config.update(overrides)
    app.json = OrjsonProvider(app)
    _use_server_logging(app)

    db.init_app(app, settings)
    errors.register_error_handlers(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(openapi.bp)
    # A refused body is read to its end (within bounds) before the answer, so the client can read the answer.
    app.wsgi_app = drain.DrainUnreadBody(app.wsgi_app)
    app.logger.info("users service configured for %s", settings.safe_database_url)
    return app


def _use_server_logging(app: Flask) -> None:
    # Under Granian (GRANIAN_LOG_LEVEL is set by users.server), log to stdout at the server's level, one
    # line per record; elsewhere (tests, a shell) Flask's own default handler stays.
    level = os.environ.get("GRANIAN_LOG_LEVEL", "").strip().upper()
    if not level or app.testing:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] %(name)s: %(message)s"))
    app.logger.handlers = [handler]
    app.logger.setLevel(level)
    app.logger.propagate = False
