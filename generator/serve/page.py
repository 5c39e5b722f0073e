"""Placeholder: replaced by the self-service page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from generator.serve.service import Service


def render_page(request: Request, service: Service) -> Response:
    return HTMLResponse("<!doctype html><title>mail</title>")
