"""The web console: static pages served by ingress-api; they use only the public API."""

from pathlib import Path

from aiohttp import web

ASSETS = Path(__file__).parent.parent / "console"
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# Everything comes from this origin; the QR arrives as a data: URL.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file(name: str) -> web.Response:
    path = ASSETS / name
    return web.Response(
        body=path.read_bytes(), content_type=TYPES[path.suffix], charset="utf-8", headers=HEADERS
    )


async def page(_: web.Request) -> web.Response:
    """The console's single page; it routes between views itself."""
    return _file("index.html")


async def admin_page(_: web.Request) -> web.Response:
    """The operator's page; it signs in with the operator key."""
    return _file("admin.html")


async def asset(request: web.Request) -> web.Response:
    """A script or stylesheet of the console (only the files that ship with it)."""
    name = request.match_info["name"]
    if name not in {p.name for p in ASSETS.iterdir()} or Path(name).suffix not in TYPES:
        raise web.HTTPNotFound()
    return _file(name)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/console", page),
        web.get("/console/", page),
        web.get("/console/admin", admin_page),
        web.get("/console/static/{name}", asset),
    ]
