"""The sidecar's trust boundary, run as ``durablehub sidecar`` processes and called with the
unmodified durabletask SDK over real sockets: beyond loopback it refuses to start without a
bearer token or mutual TLS (server-only TLS authenticates nobody); with a token every call without
it is UNAUTHENTICATED; with TLS (and mutual TLS) only clients that trust its certificate (and
present one it trusts) get through; a second
sidecar on a taken port fails instead of sharing it."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from grpc_health.v1 import health_pb2, health_pb2_grpc

from durablehub.azurite import free_port
from durablehub.errors import ConfigurationError
from durablehub.settings import TaskHubSettings
from durablehub.sidecar import Sidecar
from durablehub.taskhub.hub import TaskHub
from tests.sidecar import sdk_apps
from tests.telemetry.processes import durablehub_process

TOKEN = "s3cret-token-of-the-test"
TOKEN_ENV = {"DURABLEHUB_SIDECAR_TOKEN": TOKEN}  # server-only TLS needs it beyond loopback


def _wait_serving(process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if " serving task hub " in text:
            return
        if process.poll() is not None:
            raise AssertionError(f"the sidecar exited with {process.returncode}:\n{text}")
        time.sleep(0.1)
    raise AssertionError(f"the sidecar did not start:\n{log.read_text(errors='replace')}")


@contextmanager
def _sidecar(
    settings: TaskHubSettings, tmp_path: Path, *args: str, **env: str
) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log = tmp_path / f"sidecar-{port}.log"
    with durablehub_process(["sidecar", "--port", str(port), *args], settings, log, **env) as process:
        _wait_serving(process, log)
        yield port, process, log


def _exits(settings: TaskHubSettings, tmp_path: Path, *args: str, **env: str) -> tuple[int | None, str]:
    """Run ``durablehub sidecar ARGS``; its exit code (None: still running after 30 s) and output."""
    log = tmp_path / "refused.log"
    with durablehub_process(["sidecar", *args], settings, log, **env) as process:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        code = process.poll()
    return code, log.read_text(errors="replace")


def _run_one(client: dt_client.TaskHubGrpcClient) -> dt_client.OrchestrationState:
    iid = client.schedule_new_orchestration(sdk_apps.fan_out, input=2)
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state is not None
    return state


def test_every_interface_without_tls_or_a_token_is_refused(settings: TaskHubSettings, tmp_path: Path) -> None:
    code, output = _exits(settings, tmp_path, "--host", "0.0.0.0", "--port", str(free_port()))
    assert code not in (None, 0), f"the sidecar served 0.0.0.0 without TLS or a token:\n{output}"
    assert "0.0.0.0" in output and "DURABLEHUB_SIDECAR_TOKEN" in output and "--tls-cert" in output, output
    with TaskHub(settings) as hub:
        assert hub.leases.read_task_hub_info() is None, "a refused sidecar must not make its hub"


def test_a_token_is_checked_on_every_call(settings: TaskHubSettings, tmp_path: Path) -> None:
    with _sidecar(settings, tmp_path, "--host", "0.0.0.0", DURABLEHUB_SIDECAR_TOKEN=TOKEN) as (port, _, log):
        address = f"127.0.0.1:{port}"
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", TOKEN)]):
            stranger = dt_client.TaskHubGrpcClient(host_address=address, metadata=metadata)
            try:
                with pytest.raises(grpc.RpcError) as refused:
                    stranger.schedule_new_orchestration("fan_out", instance_id="by-a-stranger")
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value
                assert "bearer token" in str(refused.value.details())
            finally:
                stranger.close()
        with grpc.insecure_channel(address) as channel:  # probes need no token
            probe = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert probe.status == health_pb2.HealthCheckResponse.NOT_SERVING  # no SDK worker yet
        with grpc.insecure_channel(address) as channel:  # but a long-lived Watch stream does
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
            with pytest.raises(grpc.RpcError) as watching:
                next(watch)
            assert watching.value.code() == grpc.StatusCode.UNAUTHENTICATED, watching.value
        with grpc.insecure_channel(address) as channel:  # a rogue worker stream
            stream = stubs.TaskHubSidecarServiceStub(channel).GetWorkItems(
                pb.GetWorkItemsRequest(), timeout=10
            )
            with pytest.raises(grpc.RpcError) as rogue:
                next(stream)
            assert rogue.value.code() == grpc.StatusCode.UNAUTHENTICATED
        metadata = [("authorization", f"Bearer {TOKEN}")]
        sdk = sdk_apps.register(dt_worker.TaskHubGrpcWorker(host_address=address, metadata=metadata))
        sdk.start()
        client = dt_client.TaskHubGrpcClient(host_address=address, metadata=metadata)
        try:
            assert _run_one(client).runtime_status == dt_client.OrchestrationStatus.COMPLETED
            assert client.get_orchestration_state("by-a-stranger") is None
        finally:
            client.close()
            sdk.stop()
        assert TOKEN not in log.read_text()


def _certificate(
    tmp_path: Path,
    name: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
) -> tuple[Path, Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, cert, key


def test_server_only_tls_beyond_loopback_is_refused(settings: TaskHubSettings, tmp_path: Path) -> None:
    """Server-only TLS encrypts but authenticates nobody: beyond loopback it needs a token or a
    client CA as well."""
    server_crt, server_key, _, _ = _certificate(tmp_path, "localhost")
    code, output = _exits(
        settings,
        tmp_path,
        *("--host", "0.0.0.0", "--port", str(free_port())),
        *("--tls-cert", str(server_crt), "--tls-key", str(server_key)),
    )
    assert code not in (None, 0), f"the sidecar served 0.0.0.0 with TLS but no authentication:\n{output}"
    assert "DURABLEHUB_SIDECAR_TOKEN" in output and "--tls-client-ca" in output, output
    with TaskHub(settings) as hub:
        assert hub.leases.read_task_hub_info() is None, "a refused sidecar must not make its hub"


def test_tls_with_a_token_and_mutual_tls_with_the_sdk(settings: TaskHubSettings, tmp_path: Path) -> None:
    server_crt, server_key, _, _ = _certificate(tmp_path, "localhost")
    ca_crt, _, ca, ca_key = _certificate(tmp_path, "test-ca", ca=True)
    client_crt, client_key, _, _ = _certificate(tmp_path, "sdk-client", issuer=(ca, ca_key))
    tls = ["--host", "0.0.0.0", "--tls-cert", str(server_crt), "--tls-key", str(server_key)]
    trusted = grpc.ssl_channel_credentials(root_certificates=server_crt.read_bytes())
    # The token rides on the TLS channel as call credentials ("authorization: Bearer <token>").
    with_token = grpc.composite_channel_credentials(trusted, grpc.access_token_call_credentials(TOKEN))
    with _sidecar(settings, tmp_path, *tls, DURABLEHUB_SIDECAR_TOKEN=TOKEN) as (port, _, _):
        address = f"localhost:{port}"
        plain = dt_client.TaskHubGrpcClient(host_address=address)
        try:
            with pytest.raises(grpc.RpcError) as refused:  # a plain-text client cannot talk to it
                plain.get_orchestration_state("x")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            plain.close()
        tokenless = dt_client.TaskHubGrpcClient(channel=grpc.secure_channel(address, trusted))
        try:
            with pytest.raises(grpc.RpcError) as refused:  # TLS alone proves nothing of the caller
                tokenless.get_orchestration_state("x")
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            tokenless.close()
        sdk = sdk_apps.register(dt_worker.TaskHubGrpcWorker(channel=grpc.secure_channel(address, with_token)))
        sdk.start()
        client = dt_client.TaskHubGrpcClient(channel=grpc.secure_channel(address, with_token))
        try:
            assert _run_one(client).runtime_status == dt_client.OrchestrationStatus.COMPLETED
        finally:
            client.close()
            sdk.stop()
    with _sidecar(settings, tmp_path, *tls, "--tls-client-ca", str(ca_crt)) as (port, _, _):
        address = f"localhost:{port}"
        anonymous = dt_client.TaskHubGrpcClient(channel=grpc.secure_channel(address, trusted))
        try:
            with pytest.raises(grpc.RpcError) as refused:  # no client certificate
                anonymous.get_orchestration_state("x")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            anonymous.close()
        mutual = grpc.ssl_channel_credentials(
            root_certificates=server_crt.read_bytes(),
            private_key=client_key.read_bytes(),
            certificate_chain=client_crt.read_bytes(),
        )
        client = dt_client.TaskHubGrpcClient(channel=grpc.secure_channel(address, mutual))
        try:
            assert client.get_orchestration_state("x") is None  # through: no such instance
        finally:
            client.close()


def test_a_second_sidecar_on_a_taken_port_fails(settings: TaskHubSettings, tmp_path: Path) -> None:
    with Sidecar(settings, port=0) as first:
        with pytest.raises(ConfigurationError, match=rf"port {first.port} is taken"):
            Sidecar(
                settings.model_copy(update={"task_hub": f"{settings.task_hub}b"}), port=first.port
            ).start()
        code, output = _exits(settings, tmp_path, "--port", str(first.port))
        assert code not in (None, 0), f"a second sidecar served port {first.port}:\n{output}"
        assert f"port {first.port} is taken" in output, output


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["--tls-cert", "{dir}/server.crt"], {}, "TLS needs both --tls-cert and --tls-key"),
        (["--tls-client-ca", "{dir}/server.crt"], {}, "--tls-client-ca needs --tls-cert and --tls-key"),
        (
            ["--tls-cert", "{dir}/missing.crt", "--tls-key", "{dir}/server.crt"],
            TOKEN_ENV,
            "cannot read --tls-cert",
        ),
        (["--tls-cert", "{dir}/token", "--tls-key", "{dir}/server.crt"], TOKEN_ENV, "is not a PEM file"),
        ([], {"DURABLEHUB_SIDECAR_TOKEN": "short"}, "shorter than 16 characters"),
        (["--token-file", "{dir}/empty"], {}, "is empty"),
        (["--token-file", "{dir}/token"], {"DURABLEHUB_SIDECAR_TOKEN": TOKEN}, "use one"),
    ],
)
def test_bad_trust_settings_are_one_clear_line(
    settings: TaskHubSettings, tmp_path: Path, args: list[str], env: dict[str, str], said: str
) -> None:
    _certificate(tmp_path, "server")
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "empty").write_text("\n")
    options = [arg.format(dir=tmp_path) for arg in args]
    code, output = _exits(
        settings, tmp_path, "--host", "0.0.0.0", "--port", str(free_port()), *options, **env
    )
    assert code == 1, output
    assert said in output, output
    assert "Traceback" not in output and TOKEN not in output, output
    with TaskHub(settings) as hub:
        assert hub.leases.read_task_hub_info() is None
