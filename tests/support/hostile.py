"""A hostile HTTP server on 127.0.0.1: a WAHA look-alike that redirects sends elsewhere, and
endless answers, for the outbound guard's tests."""

from aiohttp import web

from tests.simulators.server import ThreadedServer

CHUNK = b"x" * 65536


class HostileServer(ThreadedServer):
    """Routes: `/endless/...` answers a body that never ends; `/redirect/...` answers 307 to
    `target`; under `/waha` a session that reports WORKING, and sends that redirect to `target`.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        app = web.Application()
        app.router.add_route("*", "/endless/{tail:.*}", self._endless)
        app.router.add_route("*", "/redirect/{tail:.*}", self._redirect)
        app.router.add_post("/waha/api/sessions", self._created)
        app.router.add_get("/waha/api/sessions/{session}", self._working)
        app.router.add_post("/waha/api/{action}", self._redirect)
        super().__init__(app)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)
        while True:
            await response.write(CHUNK)

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(self.target + "?token=redirect-secret")

    async def _created(self, request: web.Request) -> web.Response:
        return web.json_response({"name": "default", "status": "STARTING"}, status=201)

    async def _working(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        me = {"id": "5491100000001@c.us", "pushName": "hostile"}
        return web.json_response({"name": session, "status": "WORKING", "me": me})
