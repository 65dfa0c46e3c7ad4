"""data=remote against a local S3 server (moto's, on 127.0.0.1): same samples as a local copy, a bounded
cache, exact resume after SIGKILL, retries then one error line from a failing server."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_CALLBACKS, TINY, run_cli
from record_batches import samples_by_step

BUCKET = "lmlab-test"
SECRET = "s3cr3t-never-printed"
SHARD_BYTES = 2048  # 16 blocks of 64 uint16 tokens per shard
CACHE_BYTES = 4 * SHARD_BYTES
CORPUS = ["data=stdlib", "data.max_documents=20", "data.vocab_size=512", "data.block_size=64",
          f"data.shard_bytes={SHARD_BYTES}"]
RUN = [*TINY, "trainer.max_steps=8", "trainer.val_check_interval=4", "trainer.accelerator=cpu",
       "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.samples=null", "callbacks.export_hf=null",
       "data=remote", "data.block_size=64", f"data.cache_bytes={CACHE_BYTES}", "data.shuffle_window=1",
       "data.max_documents=null"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FailingProxy(BaseHTTPRequestHandler):
    """Forwards to the S3 server; answers 500 to the next `fail_next` reads of a shard instead."""

    upstream: tuple[str, int]
    fail_next = 0
    shard_reads = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if "tokens-" in self.path:
            type(self).shard_reads += 1
            if type(self).fail_next > 0:
                type(self).fail_next -= 1
                self.send_error(500, "Internal Error")
                return
        self.forward("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.forward("HEAD")

    def forward(self, method: str) -> None:
        connection = http.client.HTTPConnection(*self.upstream)
        connection.request(method, self.path, headers=dict(self.headers))
        response = connection.getresponse()
        body = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection") and (method == "HEAD" or
                                                                           key.lower() != "content-length"):
                self.send_header(key, value)
        if method == "GET":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A moto S3 server with an empty bucket; yields the environment that points s3fs at it."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    env = {"AWS_ACCESS_KEY_ID": "lmlab-test-key", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield env
    finally:
        for key, value in locals().get("saved", {}).items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def proxy(s3) -> Iterator[str]:
    handler = type("Proxy", (FailingProxy,), {"upstream": ("127.0.0.1", int(s3["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.handler = handler
    yield server
    server.shutdown()


def upload(url: str, cwd: Path, cache_dir: Path) -> None:
    result = run_cli([url, *CORPUS, f"paths.cache_dir={cache_dir}"], cwd=cwd, module="lmlab.upload_data")
    assert result.returncode == 0, result.stderr[-3000:]


def shard_cache_bytes(cache_dir: Path) -> int:
    return sum(p.stat().st_size for p in (cache_dir / "remote").rglob("shards-*/**/*") if p.is_file())


def train(url: str, run_dir: Path, cwd: Path, cache_dir: Path, env: dict[str, str], extra: list[str] = ()):
    """`lmlab-train data=remote` recording its samples; the shard cache's size sampled while it runs."""
    args = [*RUN, f"data.url={url}", *extra, "+callbacks.record._target_=record_batches.RecordBatches",
            f"+callbacks.record.dirpath={run_dir}/batches", f"run_dir={run_dir}", f"paths.cache_dir={cache_dir}"]
    largest, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):  # a file evicted while the sizes were summed
                largest[0] = max(largest[0], shard_cache_bytes(cache_dir))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return run_cli(args, cwd=cwd, env={**TEST_CALLBACKS, **env}), largest[0]
    finally:
        done.set()
        watcher.join()


@pytest.mark.slow
def test_training_from_s3_equals_the_local_copy_with_a_bounded_cache_and_resumes_exactly(s3, proxy, tmp_path):
    """A corpus over 5x the cache (4 shards) uploaded to S3 and to a local directory. Training from
    s3:// sees the samples training from file:// sees; the cache stays within its bound; a run killed after
    step 4 and relaunched trains on the same samples after it; and a server failing every shard read gives
    `data.retries` retries, then one error line."""
    cache_dir = tmp_path / "cache"
    upload(f"s3://{BUCKET}/corpus", tmp_path, cache_dir)
    upload(f"file://{tmp_path / 'copy'}", tmp_path, cache_dir)
    shards = sorted((tmp_path / "copy" / "train").glob("tokens-*.bin"))
    assert len(shards) * SHARD_BYTES >= 5 * CACHE_BYTES
    local = np.concatenate([np.fromfile(p, dtype=np.uint16) for p in shards])
    assert len(local) > 0

    result, _ = train(f"file://{tmp_path / 'copy'}", tmp_path / "local", tmp_path, tmp_path / "local-cache", s3)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = samples_by_step(tmp_path / "local" / "batches")
    assert sorted(expected) == list(range(8))

    result, largest = train(f"s3://{BUCKET}/corpus", tmp_path / "s3", tmp_path, cache_dir, s3)
    assert result.returncode == 0, result.stderr[-3000:]
    assert samples_by_step(tmp_path / "s3" / "batches") == expected
    assert 0 < largest <= CACHE_BYTES

    kill = ["+callbacks.kill._target_=signal_at_step.SigkillAfterStep", "+callbacks.kill.step=4"]
    result, _ = train(f"s3://{BUCKET}/corpus", tmp_path / "killed", tmp_path, cache_dir, s3, kill)
    assert result.returncode == -9, result.stderr[-3000:]
    result, largest = train(f"s3://{BUCKET}/corpus", tmp_path / "killed", tmp_path, cache_dir, s3)
    assert result.returncode == 0, result.stderr[-3000:]
    assert samples_by_step(tmp_path / "killed" / "batches", after=3) == {s: r for s, r in expected.items() if s > 3}
    assert largest <= CACHE_BYTES

    proxy.handler.fail_next, proxy.handler.shard_reads = 10**6, 0
    failing = {**s3, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_port}"}
    result, _ = train(f"s3://{BUCKET}/corpus", tmp_path / "failing", tmp_path, tmp_path / "failing-cache", failing,
                      ["data.retries=2", "data.backoff_s=0.05"])
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    # validation's sanity check reads first: its first shard is the one that fails
    assert last.startswith(f"error: reading s3://{BUCKET}/corpus/") and "/tokens-" in last, last
    assert "failed 3 times, the last with OSError" in last, last
    output = result.stdout + result.stderr
    assert "retry 1 of 2" in output and "retry 2 of 2" in output
    assert SECRET not in output and SECRET not in "".join(p.read_text() for p in (tmp_path / "failing").rglob("*.log"))


def test_a_read_failing_fewer_times_than_the_retries_succeeds(s3, proxy, tmp_path):
    """The server fails the next 2 reads of a shard: the cache retries (3 reads) and gets the file whole."""
    import s3fs

    from lmlab.data.remote import ShardCache

    payload = bytes(range(256)) * 8
    s3fs.S3FileSystem().pipe_file(f"{BUCKET}/unit/tokens-00000.bin", payload)
    proxy.handler.fail_next, proxy.handler.shard_reads = 2, 0
    cache = ShardCache(f"s3://{BUCKET}/unit", tmp_path / "shards", max_bytes=4096, retries=3, backoff_s=0.01)
    cache.fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://127.0.0.1:{proxy.server_port}"},
                                 skip_instance_cache=True)  # reads through the failing proxy
    path = cache.path("tokens-00000.bin", len(payload))
    assert path.read_bytes() == payload
    assert proxy.handler.shard_reads == 3
