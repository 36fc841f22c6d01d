"""An MCP client for the gateway's end-to-end tests, with DPoP-bound access tokens.

Every HTTP request carries `Authorization: DPoP <token>` and a fresh DPoP proof (RFC 9449)
signed with the Ed25519 key of --key. The steps given by --steps run in order, and each
prints one JSON line on stdout:

  {"op": "list"}                                   tools/list
  {"op": "call", "tool": T, "arguments": {...},    tools/call, "meta" sent as params._meta
   "meta": {...}}
  {"op": "wait_line"}                              read one line from stdin; a JSON object
                                                   there sets variables for later steps
  {"op": "replay"}                                 send the last POST again, same headers
                                                   and DPoP proof, outside the SDK
  {"op": "raw", "method": "POST", "body": "...",   a request outside the SDK with a fresh
   "headers": {...}, "size": N}                    proof; a header set to null is left out;
                                                   "size" pads a tools/call body to N bytes

A string value that is exactly "${name}", anywhere in a step, becomes the variable `name`
(any JSON value), if it is set.
The exit status is 0 when every step ran, whether or not the server refused it.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import time

import anyio
import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import ClientSession, MCPError, types
from mcp.client.streamable_http import streamable_http_client

OPS = {"list", "call", "wait_line", "replay", "raw"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def emit(obj):
    print(json.dumps(obj), flush=True)


class DPoPKey:
    """An Ed25519 private JWK that signs DPoP proofs."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            jwk = json.load(f)
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" not in jwk:
            sys.exit("client: --key must be a private Ed25519 JWK (kty OKP, crv Ed25519, d)")
        self.private = Ed25519PrivateKey.from_private_bytes(b64url_decode(jwk["d"]))
        x = b64url(self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        if jwk.get("x", x) != x:
            sys.exit("client: the key's x does not match its d")
        self.public_jwk = {"kty": "OKP", "crv": "Ed25519", "x": x}

    def proof(self, method, url, token):
        header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.public_jwk}
        claims = {
            "jti": b64url(os.urandom(16)),
            "htm": method,
            "htu": str(httpx2.URL(url).copy_with(query=None, fragment=None)),
            "iat": int(time.time()),
            "ath": b64url(hashlib.sha256(token.encode("ascii")).digest()),
        }
        signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
        return signing_input + "." + b64url(self.private.sign(signing_input.encode("ascii")))


class DPoPAuth(httpx2.Auth):
    """Adds the token and a fresh proof to each request, and remembers what the tests need."""

    requires_request_body = True

    def __init__(self, key, token, token_file):
        self.key, self.token, self.token_file = key, token, token_file
        self.last_post = None  # (method, url, header list, body) of the last POST sent
        self.last_refusal = None  # status and WWW-Authenticate of a POST answered >= 400
        self.session_id = None
        self.protocol_version = None

    def current_token(self):
        if self.token_file:
            with open(self.token_file, encoding="utf-8") as f:
                return f.read().strip()
        return self.token

    def sign(self, headers, method, url):
        token = self.current_token()
        headers["Authorization"] = f"DPoP {token}"
        headers["DPoP"] = self.key.proof(method, url, token)

    def auth_flow(self, request):
        self.sign(request.headers, request.method, str(request.url))
        if request.method == "POST":
            self.last_post = (request.method, str(request.url), request.headers.multi_items(), request.content)
            self.protocol_version = request.headers.get("mcp-protocol-version", self.protocol_version)
        response = yield request
        self.session_id = response.headers.get("mcp-session-id", self.session_id)
        if request.method == "POST" and response.status_code >= 400:
            self.last_refusal = http_fields(response)


def http_fields(response):
    return {"http_status": response.status_code, "www_authenticate": response.headers.get("www-authenticate")}


def failure(base, exc, auth):
    out = dict(base, ok=False)
    if isinstance(exc, MCPError):
        out["error"] = {"code": exc.code, "message": exc.message, "data": exc.data}
    else:
        out["error"] = {"code": None, "message": f"{type(exc).__name__}: {exc}", "data": None}
    out.update(auth.last_refusal or {})
    return out


def texts(content):
    return [block.text if block.type == "text" else block.model_dump(mode="json") for block in content]


def substitute(value, variables):
    if isinstance(value, str) and value.startswith("${") and value.endswith("}") and value[2:-1] in variables:
        return variables[value[2:-1]]
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def padded_call(size):
    """A tools/call request whose JSON text is exactly `size` bytes (when size allows)."""
    body = {"jsonrpc": "2.0", "id": 999, "method": "tools/call",
            "params": {"name": "crm.read_customer", "arguments": {"customer_id": ""}}}
    empty = len(json.dumps(body))
    body["params"]["arguments"]["customer_id"] = "x" * max(0, size - empty)
    return json.dumps(body)


async def raw_request(http, auth, url, step):
    headers = httpx2.Headers({"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    if auth.session_id:
        headers["Mcp-Session-Id"] = auth.session_id
    if auth.protocol_version:
        headers["Mcp-Protocol-Version"] = auth.protocol_version
    method = step.get("method", "POST")
    auth.sign(headers, method, url)
    for name, value in (step.get("headers") or {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    body = padded_call(step["size"]) if "size" in step else step.get("body", "")
    request = http.build_request(method, url, headers=headers, content=body.encode())
    auth.last_post = (method, url, request.headers.multi_items(), request.content)
    return await http.send(request)


async def replay(http, auth):
    method, url, headers, body = auth.last_post
    return await http.request(method, url, headers=headers, content=body)


async def run_step(step, session, state, auth, http, args):
    op = step["op"]
    base = {"op": op, "tool": step["tool"]} if op == "call" else {"op": op}
    if op in ("list", "call") and not state["initialized"]:
        try:
            await session.initialize()
            state["initialized"] = True
        except Exception as exc:
            return dict(failure(base, exc, auth), phase="initialize")
    try:
        if op == "list":
            result = await session.list_tools()
            return dict(base, ok=True, tools=[tool.name for tool in result.tools])
        if op == "call":
            # session.call_tool would follow a tools/call with a tools/list of its own, to
            # check the result against the tool's output schema; send the request alone.
            params = types.CallToolRequestParams(
                name=step["tool"], arguments=step.get("arguments") or {}, _meta=step.get("meta")
            )
            result = await session.send_request(types.CallToolRequest(params=params), types.CallToolResult)
            if result.is_error:
                message = " ".join(t for t in texts(result.content) if isinstance(t, str))
                return dict(base, ok=False, is_error=True, error={"code": None, "message": message, "data": None})
            return dict(base, ok=True, content=texts(result.content))
        if op == "wait_line":
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                state["variables"].update(parsed)
            return dict(base, ok=True, line=line.rstrip("\n"), eof=line == "")
        if op == "replay" and auth.last_post is None:
            return dict(base, ok=False, error={"code": None, "message": "no request to replay", "data": None})
        if op == "replay":
            response = await replay(http, auth)
        else:
            response = await raw_request(http, auth, args.url, step)
        return dict(base, ok=response.is_success, body=response.text, **http_fields(response))
    except Exception as exc:
        return failure(base, exc, auth)


async def run(args, steps):
    auth = DPoPAuth(DPoPKey(args.key), args.token, args.token_file)
    timeout = httpx2.Timeout(30, read=args.timeout)
    state = {"initialized": False, "variables": {}}
    async with (
        httpx2.AsyncClient(auth=auth, timeout=timeout) as sdk_http,
        httpx2.AsyncClient(timeout=timeout) as plain_http,
        streamable_http_client(args.url, http_client=sdk_http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=args.timeout) as session,
    ):
        for step in steps:
            auth.last_refusal = None
            step = substitute(step, state["variables"])
            emit(await run_step(step, session, state, auth, plain_http, args))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    tokens = parser.add_mutually_exclusive_group(required=True)
    tokens.add_argument("--token", help="the access token")
    tokens.add_argument("--token-file", help="a file holding the access token, read before every request")
    parser.add_argument("--key", required=True, help="the private Ed25519 JWK the token is bound to")
    parser.add_argument("--steps", required=True, help="a JSON array of steps, or @FILE to read it from a file")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for an answer")
    args = parser.parse_args()
    text = args.steps
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as f:
            text = f.read()
    steps = json.loads(text)
    if not isinstance(steps, list) or not all(isinstance(s, dict) and s.get("op") in OPS for s in steps):
        sys.exit(f"client: --steps must be a JSON array of objects with an op among {sorted(OPS)}")
    if any(s["op"] == "call" and "tool" not in s for s in steps):
        sys.exit("client: a call step needs a tool")
    try:
        anyio.run(run, args, steps)
    except Exception as exc:
        # A transport failure under the SDK (connection refused or reset) ends its session.
        while len(getattr(exc, "exceptions", ())) == 1:
            exc = exc.exceptions[0]
        sys.exit(f"client: the session failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
