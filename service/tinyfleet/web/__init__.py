"""The built-in web UI: server-rendered pages (Jinja2), a small script layer, SVG charts, live updates (SSE).

    install_web(app, settings, live)        # tinyfleet.web.mount, called by tinyfleet.api.app.create_app

Sits beside `api` (its pages use the API's auth and dependencies). `web.live` (the fan-out of the ingest's
commits) imports no web framework: the composition root (`tinyfleet.app`) creates it and hands it over.
"""
