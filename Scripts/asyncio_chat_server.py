#!/usr/bin/env python3
"""The book's listing 8.13 chat server, for `swift run -c release benchmarks chat`.

Written from the listing: start_server; the first line must be
`CONNECT <username>`; every further line is sent to every user (the sender
included) with `writer.write` + `await writer.drain()`, one user after the
other; a 60 s idle timeout per read. Only the welcome's wording follows the
Swift server ("Welcome! Users connected: N!"), so one load client serves both.

    python3 Scripts/asyncio_chat_server.py [--port N]

It prints `listening PORT` once it accepts connections, then serves until
killed. Plain asyncio (no uvloop).
"""
import argparse
import asyncio
import logging


class ChatServer:
    def __init__(self):
        self._username_to_writer = {}

    async def start_chat_server(self, host: str, port: int):
        server = await asyncio.start_server(self.client_connected, host, port, backlog=4096)
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    async def client_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        command = await reader.readline()
        command, args = command.split(b" ")
        if command == b"CONNECT":
            username = args.replace(b"\n", b"").decode()
            self._add_user(username, reader, writer)
            await self._on_connect(username, writer)
        else:
            logging.error("Got invalid command from client, disconnecting.")
            writer.close()
            await writer.wait_closed()

    def _add_user(self, username: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._username_to_writer[username] = writer
        asyncio.create_task(self._listen_for_messages(username, reader))

    async def _on_connect(self, username: str, writer: asyncio.StreamWriter):
        writer.write(f"Welcome! Users connected: {len(self._username_to_writer)}!\n".encode())
        await writer.drain()
        await self._notify_all(f"{username} connected!\n")

    async def _remove_user(self, username: str):
        writer = self._username_to_writer[username]
        del self._username_to_writer[username]
        try:
            writer.close()
            await writer.wait_closed()
        except Exception as e:
            logging.exception("Error closing client writer, ignoring.", exc_info=e)

    async def _listen_for_messages(self, username: str, reader: asyncio.StreamReader):
        try:
            while (data := await asyncio.wait_for(reader.readline(), 60)) != b"":
                await self._notify_all(f"{username}: {data.decode()}")
            await self._notify_all(f"{username} has left the chat\n")
        except Exception as e:
            logging.exception("Error reading from client.", exc_info=e)
            await self._remove_user(username)

    async def _notify_all(self, message: str):
        inactive_users = []
        for username, writer in self._username_to_writer.items():
            try:
                writer.write(message.encode())
                await writer.drain()
            except ConnectionError as e:
                logging.exception("Could not write to client.", exc_info=e)
                inactive_users.append(username)
        [await self._remove_user(username) for username in inactive_users]


async def main(port: int):
    await ChatServer().start_chat_server("127.0.0.1", port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
