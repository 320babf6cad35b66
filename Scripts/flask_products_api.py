#!/usr/bin/env python3
"""The book's listing 9.5 brands API (Flask + psycopg2 under gunicorn), for `swift run -c release benchmarks web`.

Written from the listing: one psycopg2 connection per worker process (the
listing opens it when the module is imported, which under gunicorn happens
in each worker; here gunicorn's `post_fork` hook opens it, the same thing),
`GET /brands` opens a cursor, runs the query, fetches every row and answers
with the rows as JSON objects. The book runs it as `gunicorn -w 8`: 8 sync
worker processes, each serving one request at a time. As with the aiohttp
script, the query gains `ORDER BY brand_id`.

    python3 Scripts/flask_products_api.py postgres://user@127.0.0.1:5432/db [--port N] [--workers 8]

It prints `listening PORT` once gunicorn's workers can accept connections,
then serves until killed (SIGTERM or SIGKILL: the workers die with their
arbiter). Needs `pip install flask gunicorn psycopg2-binary`.
"""
import argparse
import os
import sys

import psycopg2
from flask import Flask, jsonify
from gunicorn.app.base import BaseApplication

SQL = "SELECT brand_id, brand_name FROM brand ORDER BY brand_id"

app = Flask(__name__)
connection = None


@app.route("/brands")
def brands():
    cur = connection.cursor()
    cur.execute(SQL)
    rows = cur.fetchall()
    cur.close()
    return jsonify([{"brand_id": row[0], "brand_name": row[1]} for row in rows])


class Server(BaseApplication):
    def __init__(self, dsn: str, port: int, workers: int):
        self.dsn, self.port, self.workers = dsn, port, workers
        super().__init__()

    def load_config(self):
        dsn = self.dsn

        def post_fork(server, worker):
            global connection
            connection = psycopg2.connect(dsn)

        def when_ready(server):
            print("listening", server.LISTENERS[0].sock.getsockname()[1], flush=True)

        self.cfg.set("bind", f"127.0.0.1:{self.port}")
        self.cfg.set("workers", self.workers)
        self.cfg.set("backlog", 4096)
        self.cfg.set("accesslog", None)
        self.cfg.set("loglevel", "warning")
        self.cfg.set("post_fork", post_fork)
        self.cfg.set("when_ready", when_ready)

    def load(self):
        return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=8)
    arguments = parser.parse_args()
    sys.argv = sys.argv[:1]  # gunicorn parses sys.argv too
    Server(arguments.dsn, arguments.port, arguments.workers).run()
