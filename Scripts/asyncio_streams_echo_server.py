#!/usr/bin/env python3
"""An asyncio *streams* echo server (listing 8.12's start_server style, without the announcements).

The fastest plain-asyncio echo: `start_server` with a StreamReader/StreamWriter
per client, `readline()` then `write()` + `drain()`. The Python side of
`swift run -c release benchmarks echo` (mode `asyncio-streams`), which starts it
by itself. Run by hand:

    python3 Scripts/asyncio_streams_echo_server.py [--port N]

It prints `listening PORT` once it accepts connections, then serves until
killed. Plain asyncio (no uvloop).
"""
import argparse
import asyncio


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", port, backlog=4096)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
