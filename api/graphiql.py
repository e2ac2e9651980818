"""The development GraphiQL page, served entirely from this process (no CDN).

Strawberry's page loads React and GraphiQL from unpkg.com, so on a machine without internet
the IDE is blank. The built assets come from the `graphene-django-graphiql-static` wheel (a
plain package of GraphiQL's UMD build, React, graphql-ws; nothing of Django is imported) and
are served under `/graphiql/static/`. The page has a Content-Security-Policy that allows
scripts only from this origin plus its one inline script (by nonce); production serves no
IDE at all.
"""

from __future__ import annotations

import secrets
from importlib.resources import files

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS_PACKAGE = "graphene_django_graphiql_static"
ASSETS_DIR = "static/graphene_django_graphiql_static"
ASSETS_PATH = "/graphiql/static"
# In load order: React first, GraphiQL's UMD bundle needs the `React`/`ReactDOM` globals.
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphql-ws.min.js",
    "graphiql.min.js",
)
STYLES = ("graphiql.min.css",)

_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Trendscope GraphiQL</title>
    <style nonce="{nonce}">
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
{styles}
{scripts}
  </head>
  <body>
    <div id="graphiql">Loading...</div>
    <script nonce="{nonce}">
      const url = window.location.href.split("?")[0].split("#")[0];
      const wsUrl = url.replace(/^http/, "ws");
      const fetcher = GraphiQL.createFetcher({{
        url: url,
        wsClient: graphqlWs.createClient({{ url: wsUrl, lazy: true }}),
      }});
      ReactDOM.render(
        React.createElement(GraphiQL, {{
          fetcher: fetcher,
          defaultEditorToolsVisibility: true,
          shouldPersistHeaders: true,
        }}),
        document.getElementById("graphiql"),
      );
    </script>
  </body>
</html>
"""


def content_security_policy(nonce: str, host: str | None = None) -> str:
    """Only this origin: scripts and styles from /graphiql/static (plus the page's own inline
    script and style, by nonce; GraphiQL's editor sets inline styles itself), requests to
    /graphql over HTTP and websocket, no framing, no plugins."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            # 'self' covers ws(s) to the same host in CSP 3; older browsers need it spelt out
            f"connect-src 'self' ws://{host} wss://{host}" if host else "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def graphiql_page(host: str | None = None) -> Response:
    """The IDE's HTML with a fresh nonce, and its Content-Security-Policy (`host`: the
    request's Host, for the websocket)."""
    nonce = secrets.token_urlsafe(16)
    styles = "\n".join(
        f'    <link rel="stylesheet" href="{ASSETS_PATH}/{name}" />' for name in STYLES
    )
    scripts = "\n".join(f'    <script src="{ASSETS_PATH}/{name}"></script>' for name in SCRIPTS)
    html = _PAGE.format(nonce=nonce, styles=styles, scripts=scripts)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(nonce, host),
            "Cache-Control": "no-store",  # a fresh nonce each time
            "Referrer-Policy": "no-referrer",
        },
    )


def graphiql_assets() -> Mount:
    """`/graphiql/static/<file>` from the installed wheel."""
    directory = files(ASSETS_PACKAGE).joinpath(ASSETS_DIR)
    return Mount(ASSETS_PATH, app=StaticFiles(directory=str(directory)), name="graphiql_static")
