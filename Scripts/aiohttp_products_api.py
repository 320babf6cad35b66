#!/usr/bin/env python3
"""The book's listing 9.2 brands API (aiohttp + asyncpg), for `swift run -c release benchmarks web`.

Written from the listing: an asyncpg pool of 6 connections created in an
`on_startup` hook and closed in `on_cleanup`; `GET /brands` acquires a
connection, fetches every brand and answers with `web.json_response`. The
only change is the query's `ORDER BY brand_id`, which the Swift port adds so
that both answers are the same rows in the same order.

    python3 Scripts/aiohttp_products_api.py postgres://user@127.0.0.1:5432/db [--port N]

It prints `listening PORT` once it accepts connections, then serves until
killed. Plain asyncio (no uvloop), aiohttp's default access log off (as with
`print=None`): logging every request would measure the logger.
"""
import argparse
import asyncio

import asyncpg
from aiohttp import web

DB_KEY = "database"
SQL = "SELECT brand_id, brand_name FROM brand ORDER BY brand_id"


def make_app(dsn: str) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/brands")
    async def brands(request: web.Request) -> web.Response:
        connection: asyncpg.Pool = request.app[DB_KEY]
        results = await connection.fetch(SQL)
        result_as_dict = [dict(brand) for brand in results]
        return web.json_response(result_as_dict)

    async def create_database_pool(app: web.Application):
        app[DB_KEY] = await asyncpg.create_pool(dsn, min_size=6, max_size=6)

    async def destroy_database_pool(app: web.Application):
        await app[DB_KEY].close()

    app = web.Application()
    app.on_startup.append(create_database_pool)
    app.on_cleanup.append(destroy_database_pool)
    app.add_routes(routes)
    return app


async def main(dsn: str, port: int) -> None:
    runner = web.AppRunner(make_app(dsn), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    print("listening", site._server.sockets[0].getsockname()[1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.dsn, arguments.port))
