"""AMQPS against a real RabbitMQ that verifies its clients (tests/conftest.py): the API and
the worker carry a job over TLS; without the CA, or without a client certificate, nothing
connects, and the API never answers 202."""

from __future__ import annotations

import ssl
from pathlib import Path

import pika
import pki
import pytest
import requests
from test_api import Api
from test_worker import running, settings, wait_until

from hurtig import amqp, api, worker
from hurtig.handler import JobContext
from hurtig.worker import Worker


@pytest.fixture
def tls(broker) -> Path:
    if broker.tls_dir is None:
        pytest.skip("the broker of HURTIG_TEST_AMQP_URL has no AMQPS listener of ours")
    return broker.tls_dir


def amqps(broker, user: str, password: str) -> str:
    return f"amqps://{user}:{password}@localhost:{broker.tls_port}/{broker.vhost}"


def tls_env(directory: Path) -> dict[str, str]:
    return {
        "HURTIG_AMQP_CA_FILE": str(directory / "ca.pem"),
        "HURTIG_AMQP_CERT_FILE": str(directory / "cert.pem"),
        "HURTIG_AMQP_KEY_FILE": str(directory / "key.pem"),
    }


def listening(base: str) -> bool:
    try:
        requests.get(f"{base}/healthz", timeout=20)
        return True
    except requests.ConnectionError:
        return False


def test_a_job_goes_from_the_api_to_the_worker_over_amqps(broker, tls, function_name):
    queue = broker.declare_function(function_name)
    api = Api(broker, {function_name: queue}, HURTIG_AMQP_URL=amqps(broker, "api", "api-pw"), **tls_env(tls))
    try:
        r = api.post(function_name, {"n": 1})
        assert r.status_code == 202, r.text
        assert "api\ttrue" in broker.rabbitmqctl("list_connections", "user", "ssl")
    finally:
        api.close()
    seen: list[str] = []

    def handler(payload: object, job: JobContext) -> None:
        seen.append(job.job_id)

    s = settings(broker, function_name, amqp_urls=[amqps(broker, "worker", "worker-pw")],
                 amqp_tls=amqp.Tls(str(tls / "ca.pem"), str(tls / "cert.pem"), str(tls / "key.pem")))  # fmt: skip
    with running(Worker(s, handler)):
        wait_until(lambda: seen == [r.json()["job_id"]])
        assert "worker\ttrue" in broker.rabbitmqctl("list_connections", "user", "ssl")
    assert broker.count(queue) == 0


def test_a_program_given_amqps_without_the_ca_refuses_to_start():
    env = {"HURTIG_AMQP_URL": "amqps://u@h:5671/v", "HURTIG_FUNCTIONS": "[]", "HURTIG_FUNCTION": "f",
           "HURTIG_QUEUE": "q", "HURTIG_HANDLER": "m:f"}  # fmt: skip
    with pytest.raises(SystemExit, match="HURTIG_AMQP_CA_FILE"):
        api.Settings.from_env(env)
    with pytest.raises(SystemExit, match="HURTIG_AMQP_CA_FILE"):
        worker.Settings.from_env(env)


def test_an_api_that_does_not_trust_the_broker_never_answers_202(broker, tls, function_name, tmp_path):
    queue = broker.declare_function(function_name)
    pki.make_ca(tmp_path, "another CA")  # the broker's certificate is not signed by this one
    pki.issue(tmp_path, pki.make_ca(tmp_path / "x"), "client", "")
    env = tls_env(tls) | {"HURTIG_AMQP_CA_FILE": str(tmp_path / "ca.pem")}
    app = Api(broker, {function_name: queue}, wait=False, HURTIG_AMQP_URL=amqps(broker, "api", "api-pw"), **env)
    try:
        # a process waits up to 10 s for its first channel before it serves (hurtig.api)
        wait_until(lambda: listening(app.base), timeout=30)
        assert requests.get(f"{app.base}/readyz", timeout=5).status_code == 503
        r = app.post(function_name, {"n": 1})
        assert r.status_code == 503, r.text
        assert broker.count(queue) == 0
    finally:
        app.close()


@pytest.mark.parametrize("client_cert", [False, True])
def test_the_broker_refuses_a_client_without_a_certificate_of_the_ca(broker, tls, tmp_path, client_cert):
    """Without a client certificate, or with one of another CA: refused in the handshake."""
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    if client_cert:
        pki.issue(tmp_path, pki.make_ca(tmp_path), "intruder", "")
        context.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    params = pika.URLParameters(amqps(broker, "admin", "admin-pw") + "?connection_attempts=1")
    params.ssl_options = pika.SSLOptions(context, server_hostname="localhost")
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params).close()
    # and the same client with the deployment's certificate is admitted
    context.load_cert_chain(str(tls / "cert.pem"), str(tls / "key.pem"))
    pika.BlockingConnection(params).close()
