#!/usr/bin/env python3
"""The book's listing 3.8 echo server (sock_accept / sock_recv / sock_sendall).

The Python side of `swift run -c release benchmarks echo`, which starts it by
itself for the `asyncio` mode (python3 on PATH). Run by hand:

    python3 Scripts/asyncio_echo_server.py [--port N]

It prints one line `listening PORT` once it accepts connections, then serves
until killed. Plain asyncio (no uvloop), as in the book.
"""
import argparse
import asyncio
import socket


async def echo(connection: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
    try:
        while data := await loop.sock_recv(connection, 1024):
            await loop.sock_sendall(connection, data)
    finally:
        connection.close()


async def listen_for_connection(server: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
    while True:
        connection, _ = await loop.sock_accept(server)
        connection.setblocking(False)
        asyncio.create_task(echo(connection, loop))


async def main(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.setblocking(False)
    server.listen(1024)
    print("listening", server.getsockname()[1], flush=True)
    await listen_for_connection(server, asyncio.get_running_loop())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
