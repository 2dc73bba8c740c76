"""The bare baseline of a read: an aiohttp handler on uvloop answering one fixed JSON body.

    python -m bench._bare_json --port P --body FILE

Answers every GET with FILE's bytes as `application/json`, so a read of the gateway can be
compared with an HTTP answer of the same size that does no work at all.
"""

import argparse
from pathlib import Path

import uvloop
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._bare_json")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    body = args.body.read_bytes()

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
