"""A tiny stdio MCP server (newline-delimited JSON-RPC), stdlib only.

Tools: ``echo`` (returns its ``text``) and ``fail`` (returns an error result).
Run by codex as ``[mcp_servers.mock] command = "python3", args = [this file]``.
"""
import json
import sys

TOOLS = [
    {"name": "echo", "description": "Echo the text back.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "fail", "description": "Always fails.",
     "inputSchema": {"type": "object", "properties": {}}},
]


def reply(mid, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": mid}
    if error is not None:
        msg["error"] = error
    else:
        msg["result"] = result
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        method, mid = msg.get("method"), msg.get("id")
        if mid is None:
            continue  # a notification
        if method == "initialize":
            pv = (msg.get("params") or {}).get("protocolVersion") or "2025-06-18"
            reply(mid, {"protocolVersion": pv, "capabilities": {"tools": {"listChanged": False}},
                        "serverInfo": {"name": "mock-mcp", "version": "1.0.0"}})
        elif method == "tools/list":
            reply(mid, {"tools": TOOLS})
        elif method == "tools/call":
            p = msg.get("params") or {}
            args = p.get("arguments") or {}
            if p.get("name") == "echo":
                reply(mid, {"content": [{"type": "text", "text": f"echo: {args.get('text', '')}"}],
                            "isError": False})
            else:
                reply(mid, {"content": [{"type": "text", "text": "the fail tool failed"}], "isError": True})
        elif method == "ping":
            reply(mid, {})
        else:
            reply(mid, error={"code": -32601, "message": f"method not found: {method}"})


if __name__ == "__main__":
    main()
