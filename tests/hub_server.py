#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub's download endpoints, for vit's tests (Python standard library only).

Listens on 127.0.0.1 only, on a free port it writes to --port-file (the pid to --pid-file), and serves model
repositories from local folders:

    GET  /api/models/ORG/NAME/revision/REV     {"id", "sha", "siblings": [{"rfilename"}], "private"}
    HEAD|GET /ORG/NAME/resolve/REV/FILE         git files: 200 with ETag (git blob sha1), X-Repo-Commit
                                                LFS files (*.safetensors, *.bin, ...): 302 to /lfs/SHA256 with
                                                X-Linked-Etag (sha256), X-Linked-Size, X-Repo-Commit
    GET  /lfs/SHA256                            the bytes, with Range support (206 / 416)

REV is "main", any name given with --repo ORG/NAME@REV=DIR, or the commit sha (sha1 of the repository's files).
Errors carry X-Error-Code as the Hub sends it (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
--private ORG/NAME=TOKEN answers 401 unless "Authorization: Bearer TOKEN" is sent (as the Hub does for a
private repository); --gated ORG/NAME=TOKEN answers 401 without a token and 403 GatedRepo with another one.

Fault injection: --faults FILE holds a JSON list of rules, read on every request; each rule applies to requests
whose path contains "match" (and whose method is "method", when given), at most "times" times (default: always;
counts restart when the file changes):
    {"status": 500}               answer this status (with X-Error-Code when "error_code" is given)
    {"cut_after": N}              send the headers (full Content-Length) and N body bytes, then drop the connection
    {"truncate_to": N}            a Content-Length that lies: declare and send only N bytes, cleanly
    {"corrupt": true}             flip one byte in the middle of the body (the checksum no longer matches)
    {"rate": BYTES_PER_S}         send the body slowly
    {"delay": SECONDS}            wait before answering
Every request is appended to --log as a JSON line: method, path, range, authorization, status, bytes sent, fault.
"""
import argparse
import hashlib
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt")


class Repo:
    def __init__(self, repo_id, folder):
        self.repo_id = repo_id
        self.files = {}                                  # rfilename -> bytes
        for root, _, names in os.walk(folder):
            for n in sorted(names):
                p = os.path.join(root, n)
                self.files[os.path.relpath(p, folder).replace(os.sep, "/")] = open(p, "rb").read()
        h = hashlib.sha1(repo_id.encode())
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        self.commit = h.hexdigest()

    @staticmethod
    def is_lfs(name):
        return name.endswith(LFS_SUFFIXES)


class State:
    def __init__(self, args):
        self.repos = {}                                  # repo_id -> {revision: Repo}
        self.commits = {}                                # (repo_id, commit) -> Repo
        for spec in args.repo:
            name, folder = spec.split("=", 1)
            repo_id, _, rev = name.partition("@")
            r = Repo(repo_id, folder)
            self.repos.setdefault(repo_id, {})[rev or "main"] = r
            self.commits[(repo_id, r.commit)] = r
        self.blobs = {}                                  # sha256 -> bytes
        for revs in self.repos.values():
            for r in revs.values():
                for data in r.files.values():
                    self.blobs[hashlib.sha256(data).hexdigest()] = data
        self.private = dict(p.split("=", 1) for p in args.private)
        self.gated = dict(p.split("=", 1) for p in args.gated)
        self.faults_path = args.faults
        self.log_path = args.log
        self.lock = threading.Lock()
        self.fault_counts = {}
        self.fault_stamp = None

    def fault_for(self, method, path):
        if not self.faults_path or not os.path.exists(self.faults_path):
            return None
        with self.lock:
            st = os.stat(self.faults_path)
            stamp = (st.st_mtime_ns, st.st_size)
            try:
                rules = json.load(open(self.faults_path))
            except (OSError, ValueError):
                return None
            if stamp != self.fault_stamp:
                self.fault_stamp, self.fault_counts = stamp, {}
            for i, rule in enumerate(rules):
                if rule.get("match", "") not in path or rule.get("method", method) != method:
                    continue
                used = self.fault_counts.get(i, 0)
                if "times" in rule and used >= rule["times"]:
                    continue
                self.fault_counts[i] = used + 1
                return rule
        return None

    def log(self, entry):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vit-test-hub/1"

    def log_message(self, fmt, *args):               # the JSON log replaces the stderr log
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    # ---- answers ----

    def answer(self, status, headers=None, body=b"", head=False):
        fault = self.fault
        if fault and fault.get("corrupt") and body:
            body = bytearray(body)
            body[len(body) // 2] ^= 0xFF
            body = bytes(body)
        length = len(body)
        send = body
        if fault and "truncate_to" in fault:
            send = body[: fault["truncate_to"]]
            length = len(send)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        sent = 0
        if not head:
            if fault and "cut_after" in fault:
                send = send[: fault["cut_after"]]
            rate = fault.get("rate") if fault else None
            chunk = max(1, int(rate / 20)) if rate else 65536
            try:
                for i in range(0, len(send), chunk):
                    self.wfile.write(send[i:i + chunk])
                    self.wfile.flush()
                    sent += len(send[i:i + chunk])
                    if rate:
                        time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            if fault and "cut_after" in fault:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.status, self.sent = status, sent

    def error(self, status, code, message, head):
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self.answer(status, headers, json.dumps({"error": message}).encode(), head)

    # ---- routing ----

    def handle_request(self, head):
        st = self.server.state
        self.status, self.sent = 0, 0
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        self.fault = st.fault_for(self.command, path)
        try:
            if self.fault and "delay" in self.fault:
                time.sleep(self.fault["delay"])
            if self.fault and "status" in self.fault:
                self.error(self.fault["status"], self.fault.get("error_code"), "injected fault", head)
            else:
                self.route(path, head)
        finally:
            st.log({"method": self.command, "path": path, "range": self.headers.get("Range"),
                    "authorization": self.headers.get("Authorization"), "status": self.status, "sent": self.sent,
                    "fault": self.fault})

    def auth_error(self, repo_id, head):
        st = self.server.state
        auth = self.headers.get("Authorization")
        for table, gated in ((st.private, False), (st.gated, True)):
            if repo_id in table:
                if auth == "Bearer " + table[repo_id]:
                    return False
                if gated and auth:
                    msg = "Access to model %s is restricted and you are not in the authorized list" % repo_id
                    self.error(403, "GatedRepo", msg, head)
                elif auth:
                    self.error(401, "RepoNotFound", "Invalid credentials in Authorization header", head)
                else:
                    self.error(401, "GatedRepo" if gated else "RepoNotFound",
                               "Access to model %s is restricted" % repo_id if gated else "Repository not found", head)
                return True
        return False

    def find(self, repo_id, rev):
        st = self.server.state
        if rev in st.repos.get(repo_id, {}):
            return st.repos[repo_id][rev]
        return st.commits.get((repo_id, rev))

    def lookup(self, repo_id, rev, head):
        """The repository at `rev`, or None once the Hub's 404 or 401 answer for it is sent."""
        if repo_id not in self.server.state.repos:
            self.error(404, "RepoNotFound", "Repository not found", head)
            return None
        if self.auth_error(repo_id, head):
            return None
        repo = self.find(repo_id, rev)
        if not repo:
            self.error(404, "RevisionNotFound", "Invalid rev id: " + rev, head)
        return repo

    def route(self, path, head):
        st = self.server.state
        parts = path.split("/")
        if path.startswith("/api/models/") and len(parts) >= 7 and parts[5] == "revision":
            repo_id = parts[3] + "/" + parts[4]
            rev = urllib.parse.unquote("/".join(parts[6:]))
            repo = self.lookup(repo_id, rev, head)
            if not repo:
                return
            body = {"_id": repo.commit[:24], "id": repo_id, "modelId": repo_id, "sha": repo.commit,
                    "private": repo_id in st.private, "gated": repo_id in st.gated,
                    "siblings": [{"rfilename": n} for n in sorted(repo.files)]}
            return self.answer(200, {"Content-Type": "application/json"}, json.dumps(body).encode(), head)
        if len(parts) >= 6 and parts[3] == "resolve":
            repo_id = parts[1] + "/" + parts[2]
            rev = urllib.parse.unquote(parts[4])
            name = urllib.parse.unquote("/".join(parts[5:]))
            repo = self.lookup(repo_id, rev, head)
            if not repo:
                return
            if name not in repo.files:
                return self.error(404, "EntryNotFound", name + " does not exist at revision " + rev, head)
            data = repo.files[name]
            git_sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
            if Repo.is_lfs(name):
                sha = hashlib.sha256(data).hexdigest()
                host, port = self.server.server_address[:2]
                headers.update({"X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data)),
                                "ETag": '"%s"' % git_sha1, "Location": "http://%s:%d/lfs/%s" % (host, port, sha)})
                return self.answer(302, headers, b"", head)
            headers["ETag"] = '"%s"' % git_sha1
            return self.send_bytes(data, headers, head)
        if len(parts) == 3 and parts[1] == "lfs" and parts[2] in st.blobs:
            return self.send_bytes(st.blobs[parts[2]], {"Accept-Ranges": "bytes"}, head)
        return self.error(404, None, "Not found: " + path, head)

    def send_bytes(self, data, headers, head):
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s)
            end = int(end_s) if end_s else len(data) - 1
            if start >= len(data):
                return self.answer(416, {"Content-Range": "bytes */%d" % len(data)}, b"", head)
            headers = dict(headers, **{"Content-Range": "bytes %d-%d/%d" % (start, end, len(data))})
            return self.answer(206, headers, data[start:end + 1], head)
        return self.answer(200, headers, data, head)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):   # clients that hang up are expected
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", default=[], metavar="ORG/NAME[@REV]=DIR", help="a repository to serve")
    ap.add_argument("--private", action="append", default=[], metavar="ORG/NAME=TOKEN")
    ap.add_argument("--gated", action="append", default=[], metavar="ORG/NAME=TOKEN")
    ap.add_argument("--faults", help="JSON fault rules, read on every request")
    ap.add_argument("--log", help="JSON-lines request log")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--pid-file")
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.state = State(args)
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(args.pid_file + ".tmp", args.pid_file)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
