# SPDX-License-Identifier: GPL-2.0
"""A minimal QMP client: a Unix socket and JSON lines, standard library only."""

import json
import socket
import time


class QMPError(Exception):
    """QEMU answered a command with an error."""


class QMP:
    def __init__(self, path, timeout=30.0, alive=lambda: True, oob=False):
        """Connect to PATH, retrying for up to TIMEOUT seconds while ALIVE().
        OOB: enable out-of-band execution (see cmd_oob())."""
        self.path = path
        self.events = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline or not alive():
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        greeting = self._read()
        # Seen once (numa-node): RESUME came before the greeting.
        while "event" in greeting:
            self.events.append(greeting)
            greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"no QMP greeting on {path}: {greeting}")
        self.cmd("qmp_capabilities", {"enable": ["oob"]} if oob else None)

    def _read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"QMP connection {self.path} closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        """Run a command and return its "return" value; raise QMPError."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        return self.cmd_msg(name, msg)

    def cmd_msg(self, name, msg):
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._read()
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise QMPError(f"{name}: {resp['error'].get('desc', resp['error'])}")
            return resp.get("return")

    def cmd_oob(self, name, args=None):
        """Run a command out of band, even while the main loop is blocked (a
        postcopy destination's, on a page that does not come); for a
        connection that runs nothing else, so the next answer is its."""
        msg = {"exec-oob": name, "id": name}
        if args:
            msg["arguments"] = args
        return self.cmd_msg(name, msg)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
