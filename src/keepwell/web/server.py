"""``keepwell.web.server:app``: the application built from the environment (for uvicorn)."""

from keepwell.web.app import create_app

app = create_app()
