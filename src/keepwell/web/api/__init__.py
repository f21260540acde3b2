"""The REST API under ``/v1``: one router per area, composed here."""

from __future__ import annotations

from fastapi import APIRouter

from keepwell.web.api import customers, ingestion, insights, users, work
from keepwell.web.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)
router.include_router(customers.router)
router.include_router(insights.router)
router.include_router(ingestion.router)
router.include_router(users.router)
router.include_router(work.router)
