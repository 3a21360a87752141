"""A minimal HTTP/1.1 webhook receiver for the benchmarks, run as its own process.

    python bench/minimal_receiver.py open|gated [CERT KEY]

Reads each request, answers 204 and keeps the connection. It runs in a process of its own
so that it does not share an interpreter lock with the sender being measured. It prints its
port on the first line of stdout. With ``gated`` it accepts connections but reads nothing
until a line arrives on stdin, so a backlog of deliveries can be queued first. With CERT and
KEY it serves TLS.
"""

import asyncio
import ssl
import sys


async def main() -> None:
    gate = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await gate.wait()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.transport.abort()

    context = None
    if sys.argv[2:]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    if sys.argv[1] == "gated":
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    gate.set()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
