"""A real local HTTP server speaking the OpenAI chat-completions schema, for the VLM tests.

Its answer depends on the image it gets (the mean brightness of the first image: bright -> Happiness, high
valence; dark -> Sadness, low valence), so tests can tell answers about different inputs apart. Behaviours:
`schema` (accept `response_format`; False answers it with a 400), `reply` ("json", "prose": JSON inside prose
and a ``` fence, "malformed": no JSON, "invalid": unknown labels and out-of-range values), `delay_s`,
`status` (an HTTP error to send), `hold` (an Event every answer waits for).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


def brightness(body: dict) -> float:
    parts = body["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p.get("type") == "image_url")
    data = base64.b64decode(url.split(",", 1)[1])
    return float(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE).mean())


def answer_text(body: dict, reply: str) -> str:
    level = brightness(body)
    answer = {"categories": ["Happiness", "Excitement"] if level > 100 else ["Sadness"],
              "valence": round(1 + 9 * level / 255, 2), "arousal": 6, "dominance": 5,
              "rationale": f"brightness {level:.0f}"}
    if reply == "prose":
        return f"Here is my judgement:\n```json\n{json.dumps(answer)}\n```\nHope this helps."
    if reply == "malformed":
        return "The person looks rather cheerful, I would say."
    if reply == "invalid":
        return json.dumps({**answer, "categories": ["Happiness", "Joyfulness"], "valence": 42, "dominance": "high"})
    return json.dumps(answer)


class FakeVlmServer:
    def __init__(self, schema: bool = True, reply: str = "json", delay_s: float = 0.0, status: int | None = None):
        self.schema, self.reply, self.delay_s, self.status = schema, reply, delay_s, status
        self.hold: threading.Event | None = None
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.answered = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if server.hold is not None:
                    server.hold.wait(30)
                time.sleep(server.delay_s)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                if server.status:
                    return self._send(server.status, {"error": {"message": "server trouble"}})
                if "response_format" in body and not server.schema:
                    return self._send(400, {"error": {"message": "response_format is not supported"}})
                server.answered += 1
                self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": answer_text(body, server.reply)}}]})

            def _send(self, code: int, data: dict):
                raw = json.dumps(data).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def spec(self, model: str = "test-vlm") -> str:
        return f"vlm:{self.url}#{model}"

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()
