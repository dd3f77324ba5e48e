"""A scripted OpenAI-compatible chat-completions server, for the tests (and the copilot bench): a real HTTP
server on a local port that answers each request with the next scripted step and keeps every request it
got, so a test drives the LLM engine through the `openai` client exactly as a real endpoint would.

A step is `tool_calls([...])` (the model calls tools), `answer("...")` (the model answers in words),
`stall(seconds)` (the endpoint hangs: a timeout) or `error(status)` (the endpoint fails with that HTTP
status). A vision request is answered like any other; `request_images(body)` gives the JPEG bytes of the
images it carried, to check what the model was shown."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tool_calls(*calls: tuple[str, dict | str]) -> dict:
    """A step whose message calls tools: (wire name, arguments as a dict, or a raw string for bad JSON)."""
    return {"tool_calls": [{"id": f"call_{i}", "type": "function",
                            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                           for i, (name, args) in enumerate(calls)]}


def answer(text: str) -> dict:
    return {"content": text}


def stall(seconds: float) -> dict:
    return {"stall": seconds}


def error(status: int) -> dict:
    return {"error": status}


def request_images(body: dict) -> list[bytes]:
    """The images of a request's messages: each `image_url` content part's base64 data URL, decoded."""
    parts = [part for m in body.get("messages", []) if isinstance(m.get("content"), list) for part in m["content"]]
    return [base64.b64decode(part["image_url"]["url"].split(",", 1)[1]) for part in parts
            if part.get("type") == "image_url"]


class ScriptedModel:
    """The server: `script` is the list of steps still to serve, `requests` the JSON bodies received."""

    def __init__(self):
        self.script: list[dict] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> ScriptedModel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict) -> tuple[int, dict]:
        self.requests.append(body)
        step = self.script.pop(0) if self.script else answer("(script exhausted)")
        if "error" in step:
            return step["error"], {"error": {"message": "scripted failure", "type": "server_error"}}
        if "stall" in step:
            time.sleep(step["stall"])
            step = answer("too late")
        message = {"role": "assistant", "content": step.get("content"), **({"tool_calls": step["tool_calls"]}
                                                                          if "tool_calls" in step else {})}
        return 200, {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if "tool_calls" in step else "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}

    def _handler(self):
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                model.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, reply = model._next(body)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        return Handler
