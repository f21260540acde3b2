"""The staff web app: server-rendered pages for the CSM's daily work.

``router`` is mounted by :func:`keepwell.web.app.create_app`. Every page needs a login
(anonymous visitors are sent to ``/login``); every form carries the session's CSRF token and
changes data only through the domain services; viewers see no write controls and get 403 on
writes; settings are for admins.
"""

from fastapi import APIRouter

from keepwell.web.pages import admin, campaigns, customers, dashboard, work

router = APIRouter(include_in_schema=False)
router.include_router(dashboard.router)
router.include_router(customers.router)
router.include_router(work.router)
router.include_router(campaigns.router)
router.include_router(admin.router)
