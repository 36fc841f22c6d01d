"""A small MCP server for the gateway's end-to-end tests.

It serves four tools, a resource and a prompt over Streamable HTTP at /mcp and writes what it receives to two
JSON-lines files, so a test can check exactly what the gateway let through:

  --log FILE       one line per tools/call: {"tool": ..., "arguments": {...}}
  --http-log FILE  one line per HTTP request: {"method", "path", "authorization", "dpop"}

Prints "ready" on stdout once it accepts connections, and exits with status 0 on SIGTERM.
"""

import argparse
import asyncio
import json
import signal
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


class JsonLines:
    """Appends JSON objects to a file, one per line, flushed at once."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8")

    def write(self, obj):
        self.file.write(json.dumps(obj) + "\n")
        self.file.flush()


def build_server(call_log):
    # Record each tools/call as it arrives, with the arguments exactly as sent on the
    # wire (before any validation or type conversion).
    async def log_tool_calls(ctx, call_next):
        if ctx.method == "tools/call" and ctx.request_id is not None:
            params = ctx.params or {}
            call_log.write({"tool": params.get("name"), "arguments": params.get("arguments") or {}})
        return await call_next(ctx)

    server = MCPServer("surety-test-upstream", log_level="WARNING", middleware=[log_tool_calls])

    @server.tool(name="crm.read_customer", structured_output=False)
    def read_customer(customer_id: str) -> str:
        return f"customer {customer_id}: ACME Corp"

    @server.tool(name="payments.transfer", structured_output=False)
    def transfer(amount: float, currency: str, to: str) -> str:
        return f"transferred {amount} {currency} to {to}"

    @server.tool(name="iam.grant_role", structured_output=False)
    def grant_role(user: str, role: str) -> str:
        return "granted"

    @server.tool(name="files.share_external", structured_output=False)
    def share_external(path: str, email: str) -> str:
        return "shared"

    @server.resource("crm://customers/c-1", name="customer c-1")
    def customer() -> str:
        return "ACME Corp"

    @server.prompt(name="greeting")
    def greeting() -> str:
        return "Hello"

    return server


def log_http(app, http_log):
    """Wraps an ASGI app to record every HTTP request's method, path and auth headers."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            names = {name.lower() for name, _ in scope["headers"]}
            http_log.write(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "authorization": b"authorization" in names,
                    "dpop": b"dpop" in names,
                }
            )
        await app(scope, receive, send)

    return wrapped


async def serve(args):
    server = build_server(JsonLines(args.log))
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=args.json_response,
        # The gateway may forward its own Host header; this is a local test server,
        # so the SDK's DNS rebinding check (Host and Origin) is turned off.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if args.http_log:
        app = log_http(app, JsonLines(args.http_log))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=2
    )
    web = uvicorn.Server(config)
    task = asyncio.create_task(web.serve())
    while not web.started:
        if task.done():
            await task
            sys.exit("upstream: the server did not start")
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await task


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="JSON-lines file of tool calls")
    parser.add_argument("--http-log", help="JSON-lines file of HTTP requests")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON, not SSE")
    args = parser.parse_args()
    # uvicorn handles SIGTERM itself and then re-raises it with the handler that was in
    # place before; an empty one here makes that re-raise harmless, so the exit is 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
