"""keepwell's web server: one FastAPI application for the REST API, staff pages and public pages.

Build it with :func:`keepwell.web.app.create_app`; run it with ``keepwell serve``. Importing this
package is cheap (FastAPI is imported by the submodules that need it).
"""
