"""Where credentials come from (explicit values, the environment, `docker login`'s store), per
registry. This layer never sends them anywhere: `transport` decides where they may go."""

from lanmirror.authn.credentials import Credentials
from lanmirror.authn.dockerconfig import credentials_from_docker_config
from lanmirror.authn.keychain import hub_credentials, lan_credentials

__all__ = ["Credentials", "credentials_from_docker_config", "hub_credentials", "lan_credentials"]
