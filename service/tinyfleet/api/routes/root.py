"""A placeholder home page until the web UI lands: links to the API docs and the main endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

import tinyfleet

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tinyfleet</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}
code{{background:#f3f3f3;padding:0 .2em}}</style></head>
<body><h1>tinyfleet {version}</h1>
<p>Backend for fleets of TinyML devices. The web UI comes later; for now:</p>
<ul>
<li><a href="/docs">API documentation</a> (OpenAPI: <a href="/openapi.json">/openapi.json</a>)</li>
<li><a href="/api/v1/devices">/api/v1/devices</a> — devices and their online state</li>
<li><a href="/api/v1/events/stats?bucket=1m">/api/v1/events/stats</a> — events and labels per minute</li>
<li><a href="/api/v1/dead-letters">/api/v1/dead-letters</a> — payloads that were refused, with the reason</li>
<li><a href="/metrics">/metrics</a> (Prometheus), <a href="/readyz">/readyz</a></li>
</ul></body></html>
"""


@router.get("/", response_class=HTMLResponse)
async def home() -> HTMLResponse:
    return HTMLResponse(_PAGE.format(version=tinyfleet.__version__))
