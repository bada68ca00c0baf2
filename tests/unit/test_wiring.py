"""The one place that builds clients: credentials go to the registry they belong to, the insecure
rule is Docker's, and everything built is closed with the command."""

from lanmirror.authn import Credentials
from lanmirror.cmd.wiring import Clients

CREDS = Credentials("ci-bot", "pw")


def test_credentials_belong_to_their_registry_only():
    clients = Clients(credentials={"index.docker.io": CREDS}, daemon=False)
    assert clients.credentials("docker.io") is CREDS  # the same registry, normalised
    assert clients.credentials("10.0.0.5:5000") is None
    assert clients.registry("10.0.0.5:5000").transport.credentials is None
    assert clients.registry("docker.io").transport.credentials is CREDS


def test_insecure_rule_without_a_daemon():
    clients = Clients(insecure=["10.1.0.0/16", "lan.example:5000"], daemon=False)
    assert clients.insecure("127.0.0.1:5000") and clients.insecure("localhost:5000")
    assert clients.insecure("10.1.2.3:5000") and clients.insecure("lan.example:5000")
    assert not clients.insecure("10.2.0.1:5000") and not clients.insecure("docker.io")
    assert clients.registry("10.1.2.3:5000").transport.insecure  # HTTPS unverified, then HTTP, on first use
    assert clients.registry("10.2.0.1:5000").transport.scheme == "https"  # known without a request
    assert clients.engine() is None


def test_clients_close_what_they_built():
    with Clients(daemon=False) as clients:
        reg = clients.registry("127.0.0.1:1")
        closed = []
        reg.transport.session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    assert closed == [True]


def test_a_url_is_the_registrys_own_only_on_its_host_port_and_scheme():
    t = Clients(daemon=False).registry("registry.example:5000").transport  # https: not loopback, not insecure
    assert t.owns("https://registry.example:5000/v2/x/blobs/uploads/1")
    assert not t.owns("https://registry.example:5001/v2/x/blobs/uploads/1")  # another port
    assert not t.owns("https://cdn.example/v2/x")  # another host
    assert not t.owns("http://registry.example:5000/v2/x")  # a downgrade to plain HTTP
